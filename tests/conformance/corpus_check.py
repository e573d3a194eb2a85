#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Corpus conformance: mailroom against other projects' expected results.

Sources with expected results in ../shared/corpus (see its README.md):

  stalwart  stalwart-mail-parser/eml/*/NNN.eml + NNN.json. The source test
            parses the file after deleting every CR, so we feed the parser
            CR-stripped temporary copies (offsets and sizes then match).
  zammad    zammad/mail/mailNNN.box + mailNNN.yml.json (Zammad 5.2.2),
            fed as is.

All inputs go through ONE `mailroom parse --jsonl` process. A field is
compared only when the expected file has it. Text comparisons collapse every
whitespace run to one space and trim. Fields:

  subject, from_email, from_name, to, cc, date, message_id, text, html,
  att_filenames, att_types, att_sizes

The test fails when agreement on a source, leaving out the fields listed in
known-disagreements.tsv (the expected value there is the other library's
quirk), is below MIN_AGREEMENT; or when a disagreement appears that is not
in known-disagreements.tsv (source, file,
field, reason: why the expected value is a quirk of the other library, or
our known gap). A listed entry that now agrees is reported as stale, which
does not fail the test: delete the line.

Exit: 0 pass, 1 fail, 77 skipped (no corpus).
"""
import argparse
import datetime
import difflib
import html as htmlmod
import json
import os
import re
import sys
import tempfile
from email.utils import getaddresses

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "diff"))
import mailroom_fields  # noqa: E402

MIN_AGREEMENT = 97.0  # percent, per source
SKIP = 77


def norm(s):
    if s is None:
        return None
    return " ".join(str(s).split())


def strip_tags(s):
    """Loose HTML -> text, for Zammad's sanitised bodies."""
    if s is None:
        return None
    s = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", s)
    s = re.sub(r"(?s)<!--.*?-->", " ", s)
    s = re.sub(r"(?s)<[^>]*>", " ", s)
    return norm(htmlmod.unescape(s))


def loose_equal(ours, theirs):
    """Zammad rewrites HTML (drops some elements, adds alt and title text),
    so its body is only compared as a bag of characters: 90% in common
    (difflib quick_ratio) and no more U+FFFD than it has (a charset error
    of ours must not hide in the 10%)."""
    if ours is None or theirs is None:
        return ours == theirs
    if ours.count("\ufffd") > theirs.count("\ufffd"):
        return False
    return difflib.SequenceMatcher(None, ours, theirs,
                                   autojunk=False).quick_ratio() >= 0.9


def find_corpus(arg):
    for base in (os.environ.get("MR_SHARED"), arg,
                 os.path.join(REPO, "..", "shared")):
        if base and os.path.isdir(os.path.join(base, "corpus")):
            return os.path.join(base, "corpus")
    return None


# ---- stalwart ------------------------------------------------------------

def _sw_header(part, name):
    for h in part["headers"]:
        if h["name"] == name:
            return h["value"]
    return None


def _sw_addrs(value):
    out = []
    if not isinstance(value, dict) or "Address" not in value:
        return out
    a = value["Address"]
    if "List" in a:
        lst = a["List"]
    else:  # {"Group": [{"name", "addresses": [...]}]}
        lst = [m for g in a.get("Group", []) for m in g.get("addresses") or []]
    for m in lst:
        out.append((norm(m.get("name")) or None, m.get("address")))
    return out


def _sw_date(value):
    if not isinstance(value, dict) or "DateTime" not in value:
        return "skip"
    d = value["DateTime"]
    try:
        t = datetime.datetime(d["year"], d["month"], d["day"], d["hour"],
                              d["minute"], d["second"])
    except (ValueError, KeyError):
        return "skip"
    off = datetime.timedelta(hours=d["tz_hour"], minutes=d["tz_minute"])
    t = t + off if d["tz_before_gmt"] else t - off
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sw_ctype(part):
    v = _sw_header(part, "content_type")
    if isinstance(v, dict) and "ContentType" in v:
        c = v["ContentType"]
        if c.get("c_subtype"):
            return ("%s/%s" % (c["c_type"], c["c_subtype"])).lower()
    return None


def _sw_filename(part):
    for hname, attr in (("content_disposition", "filename"),
                        ("content_type", "name")):
        v = _sw_header(part, hname)
        if isinstance(v, dict) and "ContentType" in v:
            for a in v["ContentType"].get("attributes") or []:
                if a["name"].lower() == attr:
                    return a["value"]
    return None


def _sw_size(part):
    b = part["body"]
    k = next(iter(b))
    if k in ("Binary", "InlineBinary"):
        return len(b[k])
    if k == "Message":
        return part["offset_end"] - part["offset_body"]
    if k in ("Text", "Html"):
        v = _sw_header(part, "content_type")
        cs = None
        if isinstance(v, dict) and "ContentType" in v:
            for a in v["ContentType"].get("attributes") or []:
                if a["name"].lower() == "charset":
                    cs = a["value"].lower()
        if cs in (None, "utf-8", "us-ascii", "utf8", "ascii"):
            return len(b[k].encode("utf-8"))
    return None


def stalwart_expected(doc):
    parts = doc["parts"]
    root = parts[0]
    exp = {}
    v = _sw_header(root, "subject")
    if isinstance(v, dict) and "Text" in v:
        exp["subject"] = norm(v["Text"])
    v = _sw_header(root, "from")
    if v is not None:
        a = _sw_addrs(v)
        exp["from_email"] = a[0][1] if a else None
        exp["from_name"] = a[0][0] if a else None
    for f in ("to", "cc"):
        v = _sw_header(root, f)
        if v is not None:
            exp[f] = _sw_addrs(v)
    v = _sw_header(root, "date")
    if v is not None:
        d = _sw_date(v)
        if d != "skip":
            exp["date"] = d
    v = _sw_header(root, "message_id")
    if isinstance(v, dict) and "Text" in v:
        exp["message_id"] = v["Text"]

    tb = [parts[i] for i in doc.get("text_body", [])]
    if not tb:
        exp["text"] = None
    elif "Text" in tb[0]["body"]:
        exp["text"] = norm(" ".join(p["body"]["Text"] for p in tb
                                    if "Text" in p["body"]))
    hb = [parts[i]["body"]["Html"] for i in doc.get("html_body", [])
          if "Html" in parts[i]["body"]]
    exp["html"] = norm(hb[0]) if hb else None

    atts = [parts[i] for i in doc.get("attachments", [])]
    exp["att_filenames"] = [_sw_filename(p) for p in atts]
    types = [_sw_ctype(p) for p in atts]
    if None not in types:
        exp["att_types"] = types
    sizes = [_sw_size(p) for p in atts]
    if None not in sizes:
        exp["att_sizes"] = sizes
    return exp


# ---- zammad --------------------------------------------------------------

def _z_emails(s):
    if s is None:
        return None
    return [e for _, e in getaddresses([s]) if e]


def zammad_expected(doc):
    exp = {}
    if "subject" in doc:
        exp["subject"] = norm(doc["subject"])
    if "from_email" in doc:
        exp["from_email"] = doc["from_email"] or None
    if "from_display_name" in doc:
        exp["from_name"] = norm(doc["from_display_name"]) or None
    for f in ("to", "cc"):
        if f in doc:
            exp[f + "_emails"] = _z_emails(doc[f])
    if "message_id" in doc:
        exp["message_id"] = (doc["message_id"] or "").strip("<>") or None
    if "date" in doc:
        exp["date"] = doc["date"]  # only ever null in this corpus
    # Zammad writes this placeholder for a message whose body it found
    # empty (or that it could not read, e.g. S/MIME): not a parse result.
    if "body" in doc and doc["body"] != "no visible content":
        ct = doc.get("content_type")
        if ct == "text/plain":
            exp["text"] = norm(doc["body"])
        else:  # text/html, or unknown: Zammad-sanitised, compare loosely
            exp["body_loose"] = strip_tags(doc["body"])
    if "attachments" in doc:
        atts = [a for a in doc["attachments"]
                if not (a.get("preferences") or {}).get("content-alternative")]
        exp["att_filenames"] = sorted(a.get("filename") or "" for a in atts)
        types = [(a.get("preferences") or {}).get("Mime-Type") for a in atts]
        if None not in types:
            exp["att_types"] = sorted(t.lower() for t in types)
        exp["att_sizes"] = sorted(a["data_size"] for a in atts)
    return exp


# ---- ours ----------------------------------------------------------------

def actual(source, f):
    """Comparable fields (mailroom_fields) -> the keys expected uses."""
    act = {}
    act["subject"] = norm(f.get("subject"))
    frm = f.get("from") or []
    act["from_email"] = frm[0]["email"] if frm else None
    act["from_name"] = norm(frm[0]["name"]) or None if frm else None
    for k in ("to", "cc"):
        lst = f.get(k) or []
        act[k] = [(norm(a["name"]) or None, a["email"]) for a in lst]
        act[k + "_emails"] = [a["email"] for a in lst if a["email"]]
    act["date"] = f.get("date")
    act["message_id"] = f.get("message_id")
    act["text"] = norm(f.get("text"))
    act["html"] = norm(f.get("html"))
    if f.get("html") is not None:
        act["body_loose"] = strip_tags(f.get("html"))
    else:
        act["body_loose"] = norm(f.get("text"))
    atts = f.get("attachments") or []
    names = [a.get("filename") for a in atts]
    types = [a.get("content_type") for a in atts]
    sizes = [a.get("size") for a in atts]
    if source == "zammad":  # matched by content there, not by position
        names = sorted(n or "" for n in names)
        types = sorted(types)
        sizes = sorted(sizes)
    act["att_filenames"] = names
    act["att_types"] = types
    act["att_sizes"] = sizes
    return act


def short(v, n=90):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n - 3] + "..."


def load_known(path):
    known = {}
    if not path or not os.path.exists(path):
        return known
    with open(path, encoding="utf-8") as fh:
        for ln, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 4 or not cols[3].strip():
                print("%s:%d: need source, file, field, reason" % (path, ln))
                continue
            known[(cols[0], cols[1], cols[2])] = cols[3]
    return known


def collect(corpus, tmp):
    """[(source, relpath, input path, expected dict)]"""
    cases = []
    sw = os.path.join(corpus, "stalwart-mail-parser", "eml")
    for sub in sorted(os.listdir(sw)) if os.path.isdir(sw) else []:
        d = os.path.join(sw, sub)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".eml"):
                continue
            exp = os.path.join(d, name[:-4] + ".json")
            if not os.path.exists(exp):
                continue
            with open(os.path.join(d, name), "rb") as fh:
                raw = fh.read().replace(b"\r", b"")
            os.makedirs(os.path.join(tmp, sub), exist_ok=True)
            inp = os.path.join(tmp, sub, name)
            with open(inp, "wb") as fh:
                fh.write(raw)
            with open(exp, encoding="utf-8") as fh:
                cases.append(("stalwart",
                              "stalwart-mail-parser/eml/%s/%s" % (sub, name),
                              inp, stalwart_expected(json.load(fh))))
    zd = os.path.join(corpus, "zammad", "mail")
    for name in sorted(os.listdir(zd)) if os.path.isdir(zd) else []:
        if not name.endswith(".box"):
            continue
        exp = os.path.join(zd, name[:-4] + ".yml.json")
        if not os.path.exists(exp):
            continue
        with open(exp, encoding="utf-8") as fh:
            cases.append(("zammad", "zammad/mail/" + name,
                          os.path.join(zd, name),
                          zammad_expected(json.load(fh))))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailroom", required=True)
    ap.add_argument("--shared")
    ap.add_argument("--known", default=os.path.join(
        HERE, "known-disagreements.tsv"))
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print known disagreements")
    args = ap.parse_args()

    corpus = find_corpus(args.shared)
    if corpus is None:
        print("skipped: ../shared not found (set MR_SHARED)")
        return SKIP
    if not os.access(args.mailroom, os.X_OK):
        print("FAIL: mailroom binary not found: %s" % args.mailroom)
        return 1
    known = load_known(args.known)

    with tempfile.TemporaryDirectory(prefix="mr-conf-") as tmp:
        cases = collect(corpus, tmp)
        events, notes = mailroom_fields.run_mailroom(
            args.mailroom, [c[2] for c in cases])
    for n in notes:
        print("note:", n)

    stats = {}
    new, seen = [], set()
    for source, rel, inp, exp in cases:
        st = stats.setdefault(source, [0, 0, 0])  # compared, agreed, known
        ev = events.get(inp, {"error": "no output"})
        fields = mailroom_fields.event_fields(ev, inp)
        act = None if "error" in fields else actual(source, fields)
        for field in sorted(exp):
            st[0] += 1
            ours = act.get(field) if act else "<error: %s>" % fields["error"]
            if ours == exp[field] or (field == "body_loose" and
                                      loose_equal(ours, exp[field])):
                st[1] += 1
                continue
            key = (source, rel, field)
            seen.add(key)
            line = "  %s %s: ours %s, expected %s" % (
                rel, field, short(ours), short(exp[field]))
            if key in known:
                st[2] += 1
                if args.verbose:
                    print("known:" + line[1:] + "  (" + known[key] + ")")
            else:
                new.append(line)

    ok = True
    for source in sorted(stats):
        n, agree, nknown = stats[source]
        raw = 100.0 * agree / n if n else 100.0
        pct = 100.0 * agree / (n - nknown) if n > nknown else 100.0
        flag = "" if pct >= MIN_AGREEMENT else "  BELOW %.0f%%" % MIN_AGREEMENT
        print("%-9s fields compared %5d, agreed %5d (%.2f%%); %d known "
              "quirks left out: %.2f%%%s"
              % (source, n, agree, raw, nknown, pct, flag))
        if pct < MIN_AGREEMENT:
            ok = False
    if new:
        ok = False
        print("%d disagreement(s) not in %s:" % (
            len(new), os.path.basename(args.known)))
        for line in new:
            print(line)
    stale = sorted(k for k in known if k not in seen)
    for k in stale:
        print("stale (now agrees; delete the line): %s\t%s\t%s" % k)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
