#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Python email package side of the differential tests and benchmarks.

Prints one JSON line of "comparable fields" per input file (directories are
walked, entries sorted), the same shape as gmime_fields and
mailroom_fields.py:

  {"file", "subject", "from": [{"name", "email"}], "to", "cc",
   "date": "YYYY-MM-DDTHH:MM:SSZ" | null, "message_id", "in_reply_to",
   "references": [ids], "text", "html",
   "attachments": [{"filename", "content_type", "size", "sha256"}]}

Parsing uses BytesParser(policy=policy.default). text is the first inline
text/plain, html the first inline text/html (multiparts walked depth first,
message/rfc822 parts are leaves); every other leaf part is an attachment.
A message that raises (RecursionError on deep nesting, header registry bugs)
prints {"file": ..., "error": ...} and the run goes on.

Known weaknesses (not ground truth there): the parser splits header lines at
a bare CR, recurses once per nesting level, and re-serialises embedded
message/rfc822 parts (so their size and hash differ from the raw bytes).

--quiet: do all the work, print nothing (for benchmarks).
"""
import datetime
import hashlib
import json
import os
import re
import sys
from email import policy
from email.parser import BytesParser

MSGID_RE = re.compile(r"<([^<>]*)>")


def clean(s):
    """Lone surrogates (undecodable header bytes) -> U+FFFD."""
    if s is None:
        return None
    s = str(s)
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace") \
        if any(0xD800 <= ord(c) <= 0xDFFF for c in s) else s


def addresses(msg, name):
    out = []
    try:
        h = msg[name]
        if h is None:
            return out
        addrs = h.addresses
    except Exception:
        return out
    for a in addrs:
        out.append({"name": clean(a.display_name) or None,
                    "email": clean(a.addr_spec) or None})
    return out


def date_of(msg):
    try:
        h = msg["date"]
        if h is None:
            return None
        dt = h.datetime
    except Exception:
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids(msg, name):
    try:
        v = msg.get(name)
    except Exception:
        return []
    if v is None:
        return []
    return [clean(x.strip()) for x in MSGID_RE.findall(str(v)) if x.strip()]


def text_of(part):
    try:
        s = part.get_content()
    except Exception:
        data = part.get_payload(decode=True) or b""
        s = data.decode("utf-8", "replace")
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    return clean(s.replace("\r\n", "\n"))


def attachment(part):
    if part.is_multipart():  # message/rfc822: re-serialised, see above
        try:
            data = b"".join(p.as_bytes() for p in part.get_payload())
        except Exception:
            data = b""
    else:
        data = part.get_payload(decode=True) or b""
    return {"filename": clean(part.get_filename()),
            "content_type": part.get_content_type(),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def fields(path):
    with open(path, "rb") as f:
        msg = BytesParser(policy=policy.default).parse(f)
    subj = None
    try:
        if msg["subject"] is not None:
            subj = clean(str(msg["subject"]))
    except Exception:
        subj = None
    mid = ids(msg, "message-id")
    if not mid:
        try:
            raw = msg.get("message-id")
            mid = [str(raw).strip()] if raw is not None and str(raw).strip() \
                else []
        except Exception:
            mid = []
    irt = ids(msg, "in-reply-to")
    out = {"file": path, "subject": subj,
           "from": addresses(msg, "from"), "to": addresses(msg, "to"),
           "cc": addresses(msg, "cc"), "date": date_of(msg),
           "message_id": mid[0] if mid else None,
           "in_reply_to": irt[0] if irt else None,
           "references": ids(msg, "references"),
           "text": None, "html": None, "attachments": []}
    # Iterative walk: the parser itself may recurse, we need not.
    stack = [msg]
    while stack:
        part = stack.pop()
        ctype = part.get_content_type()
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            stack.extend(reversed(part.get_payload()))
            continue
        inline = part.get_content_disposition() != "attachment"
        if inline and ctype == "text/plain" and out["text"] is None:
            out["text"] = text_of(part)
            continue
        if inline and ctype == "text/html" and out["html"] is None:
            out["html"] = text_of(part)
            continue
        out["attachments"].append(attachment(part))
    return out


def inputs(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if not name.startswith("."):
                    yield from inputs([os.path.join(p, name)])
        else:
            yield p


def main(argv):
    quiet = "--quiet" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if not paths:
        print("usage: py_fields.py [--quiet] FILE|DIR...", file=sys.stderr)
        return 2
    out = sys.stdout
    for path in inputs(paths):
        try:
            rec = fields(path)
        except RecursionError:
            rec = {"file": path, "error": "RecursionError"}
        except Exception as e:  # keep going: one bad message is one line
            rec = {"file": path, "error": "%s: %s" % (type(e).__name__,
                                                      clean(str(e))[:200])}
        if not quiet:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
