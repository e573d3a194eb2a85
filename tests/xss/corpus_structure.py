#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Outlook, Gmail and Apple Mail HTML still looks like the original after
sanitizing: a structural check (issue 5, docs/content.md).

Messages: the HTML replies of mailgun-talon (html_replies/*.html, one file
per client), zammad's signature-detection HTML and every zammad message whose HTML part carries a client's
marks (Outlook: MsoNormal / the Office namespaces; Gmail: gmail_ classes;
Apple Mail: Apple-Mail / apple-content-edited / -webkit-nbsp-mode), read
with `mailroom parse`. Each is sanitized with `mailroom html sanitize
--jsonl` and both versions are counted with Python's html.parser.

Thresholds, over all messages together (the test fails below them):
  table cells (td, th)             >= 95% kept
  table rows (tr)                  >= 95% kept
  inline style declarations        >= 90% kept
  cid: images                      100% kept
and at least one message of each of the three clients.
Exit 0 pass, 1 fail, 77 corpus absent.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

CELLS_MIN, ROWS_MIN, DECLS_MIN, CID_MIN = 0.95, 0.95, 0.90, 1.0


class Count(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells = self.rows = self.tables = self.decls = self.cids = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("td", "th"):
            self.cells += 1
        elif tag == "tr":
            self.rows += 1
        elif tag == "table":
            self.tables += 1
        elif tag == "img" and (a.get("src") or "").strip().lower().startswith("cid:"):
            self.cids += 1
        style = a.get("style")
        if style:
            for d in style.split(";"):
                name, sep, value = d.partition(":")
                if sep and name.strip() and value.strip():
                    self.decls += 1


def count(html):
    c = Count()
    c.feed(html)
    c.close()
    return c


def client_of(html):
    h = html
    if "MsoNormal" in h or "urn:schemas-microsoft-com:office" in h:
        return "outlook"
    if 'class="gmail_' in h or "class=gmail_" in h:
        return "gmail"
    if "Apple-Mail" in h or "apple-content-edited" in h or "-webkit-nbsp-mode" in h:
        return "apple"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailroom", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    corpus = os.path.join(args.shared, "corpus")
    if not os.path.isdir(corpus):
        print(f"skipped: {corpus} not found")
        return 77
    docs = []  # (name, client, html)
    for path in sorted(glob.glob(os.path.join(corpus, "mailgun-talon/html_replies/*.html"))):
        with open(path, "rb") as f:
            html = f.read().decode("utf-8", "replace")
        base = os.path.basename(path)
        client = client_of(html) or (
            "gmail" if base.startswith("gmail") else
            "outlook" if base.startswith("ms_outlook") else None)
        if client:
            docs.append((os.path.relpath(path, corpus), client, html))
    # Outlook signatures in tables (zammad's signature detection set).
    for path in sorted(glob.glob(os.path.join(corpus, "zammad/email_signature_detection/*.html"))):
        with open(path, "rb") as f:
            html = f.read().decode("utf-8", "replace")
        client = client_of(html)
        if client:
            docs.append((os.path.relpath(path, corpus), client, html))
    boxes = sorted(glob.glob(os.path.join(corpus, "zammad/mail/*.box")))
    if boxes:
        p = subprocess.run([args.mailroom, "parse", "--jsonl"] + boxes,
                           capture_output=True, timeout=240)
        for line in p.stdout.decode("utf-8").splitlines():
            ev = json.loads(line)
            html = ev.get("html")
            if not html or "file" not in ev:
                continue
            client = client_of(html)
            if client:
                docs.append((os.path.relpath(ev["file"], corpus), client, html))
    if not docs:
        print("skipped: no Outlook, Gmail or Apple Mail HTML in the corpus")
        return 77
    inp = "".join(json.dumps({"id": i, "html": d[2]}) + "\n" for i, d in enumerate(docs))
    p = subprocess.run([args.mailroom, "html", "sanitize", "--jsonl"],
                       input=inp.encode(), capture_output=True, timeout=240)
    out = {}
    for line in p.stdout.decode("utf-8").splitlines():
        o = json.loads(line)
        out[o["id"]] = o.get("html_sanitized")
    tot = {k: [0, 0] for k in ("cells", "rows", "decls", "cids", "tables")}
    clients = {}
    print(f"{'message':48} {'client':8} {'cells':>11} {'rows':>11} {'style decls':>11} {'cid img':>9}")
    for i, (name, client, html) in enumerate(docs):
        s = out.get(i)
        if s is None:
            print(f"{name}: not sanitized")
            return 1
        a, b = count(html), count(s)
        clients[client] = clients.get(client, 0) + 1
        for k in tot:
            tot[k][0] += getattr(a, k)
            tot[k][1] += getattr(b, k)
        print(f"{name[:48]:48} {client:8} {b.cells:>5}/{a.cells:<5} {b.rows:>5}/{a.rows:<5}"
              f" {b.decls:>5}/{a.decls:<5} {b.cids:>4}/{a.cids:<4}")

    def share(k):
        kept, orig = tot[k][1], tot[k][0]
        return 1.0 if orig == 0 else kept / orig

    checks = [("table cells", "cells", CELLS_MIN), ("table rows", "rows", ROWS_MIN),
              ("style declarations", "decls", DECLS_MIN), ("cid images", "cids", CID_MIN)]
    ok = True
    print(f"\n{len(docs)} messages: {clients}")
    for label, k, floor in checks:
        good = share(k) >= floor
        ok &= good
        print(f"{label:20} {tot[k][1]:>6} of {tot[k][0]:<6} kept = {100 * share(k):6.2f}%"
              f"  (threshold {100 * floor:.0f}%) {'ok' if good else 'BELOW'}")
    for c in ("outlook", "gmail", "apple"):
        if not clients.get(c):
            print(f"no {c} message found")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
