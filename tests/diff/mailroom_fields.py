#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mailroom's side of the differential tests: event -> comparable fields.

Turns `mailroom parse --jsonl` output (docs/event.md) into the same JSON
lines gmime_fields and py_fields.py print (see py_fields.py). `from` (one
address or null) becomes a list of at most one; a derived message_id
(message_id_derived) becomes null, as the peers have no such notion.

Usage:
  mailroom_fields.py --mailroom BIN [--quiet] FILE|DIR...   runs the parser
  mailroom parse --jsonl ... | mailroom_fields.py            converts stdin

Also imported by differential.py and corpus_check.py (run_mailroom,
event_fields).
"""
import json
import os
import subprocess
import sys


def _addr(a):
    if not isinstance(a, dict):
        return {"name": None, "email": None}
    return {"name": a.get("name") or None, "email": a.get("email") or None}


def event_fields(ev, path=None):
    """One event object (or an error record) -> comparable fields."""
    path = path if path is not None else ev.get("file")
    if "error" in ev and "type" not in ev:
        return {"file": path, "error": ev["error"]}
    frm = ev.get("from")
    atts = []
    for a in ev.get("attachments") or []:
        atts.append({"filename": a.get("filename"),
                     "content_type": a.get("content_type"),
                     "size": a.get("size"),
                     "sha256": a.get("sha256")})
    return {
        "file": path,
        "subject": ev.get("subject"),
        "from": [_addr(frm)] if frm else [],
        "to": [_addr(a) for a in ev.get("to") or []],
        "cc": [_addr(a) for a in ev.get("cc") or []],
        "date": ev.get("date"),
        "message_id": None if ev.get("message_id_derived")
        else ev.get("message_id"),
        "in_reply_to": ev.get("in_reply_to"),
        "references": list(ev.get("references") or []),
        "text": ev.get("text"),
        "html": ev.get("html"),
        "attachments": atts,
    }


def _run(binary, paths, timeout):
    """One `parse --jsonl` process; returns ({file: event}, rc, stderr)."""
    out = {}
    try:
        p = subprocess.run([binary, "parse", "--jsonl"] + list(paths),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return out, "timeout", (e.stderr or b"")[-2000:]
    for line in p.stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and "file" in ev:
            out[ev["file"]] = ev
    return out, p.returncode, p.stderr[-2000:]


def run_mailroom(binary, paths, timeout=600):
    """Parses all paths with ONE mailroom process; files it did not report
    (it crashed or refused them) are retried one per process so a crash is
    pinned to its file. Returns ({path: event or {"error": ...}}, notes)."""
    paths = list(paths)
    events, rc, err = _run(binary, paths, timeout)
    notes = []
    if rc != 0:
        notes.append("mailroom parse --jsonl exited %s: %s"
                     % (rc, err.decode("utf-8", "replace").strip()[-300:]))
    for path in paths:
        if path in events:
            continue
        one, rc1, err1 = _run(binary, [path], 60)
        if path in one:
            events[path] = one[path]
            continue
        msg = err1.decode("utf-8", "replace").strip()[-200:] \
            if isinstance(err1, bytes) else str(err1)
        if isinstance(rc1, int) and rc1 < 0:
            msg = "killed by signal %d %s" % (-rc1, msg)
        elif rc1 == "timeout":
            msg = "timeout"
        events[path] = {"file": path, "error": "exit %s: %s" % (rc1, msg)}
    return events, notes


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
    binary = None
    rest = []
    it = iter(argv)
    for a in it:
        if a == "--mailroom":
            binary = next(it, None)
        elif not a.startswith("--"):
            rest.append(a)
    if binary:
        files = list(inputs(rest))
        events, notes = run_mailroom(binary, files)
        for n in notes:
            print(n, file=sys.stderr)
        records = [event_fields(events[f], f) for f in files]
    else:
        records = []
        for line in sys.stdin:
            line = line.strip()
            if line:
                records.append(event_fields(json.loads(line)))
    if not quiet:
        for r in records:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
