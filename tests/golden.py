#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Golden cases: tests/data/mime/NAME.eml + NAME.json.

Every .eml with a .json beside it is parsed by `mailroom parse --jsonl`
(one process for all) and checked against the .json by subset match: each
key of the expected object must be in the event with an equal value.
Objects nest the same way (only the keys listed are checked, so
"headers": {"subject": ...} checks one header); lists must have the same
length and match element by element. Golden files therefore list only what
matters for the case, and adding a case is adding two files.

Exit: 0 pass, 1 fail, 77 when there is no case.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "diff"))
import mailroom_fields  # noqa: E402


def mismatches(exp, act, path):
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return ["%s: expected an object, got %s" % (path, short(act))]
        out = []
        for k, v in exp.items():
            if k not in act:
                out.append("%s.%s: missing" % (path, k))
            else:
                out.extend(mismatches(v, act[k], "%s.%s" % (path, k)))
        return out
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            return ["%s: expected %s, got %s" % (path, short(exp),
                                                 short(act))]
        out = []
        for i, (e, a) in enumerate(zip(exp, act)):
            out.extend(mismatches(e, a, "%s[%d]" % (path, i)))
        return out
    # bool is an int in Python: keep true != 1
    if exp != act or type(exp) is bool and type(act) is not bool:
        return ["%s: expected %s, got %s" % (path, short(exp), short(act))]
    return []


def short(v, n=120):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailroom", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "mime"))
    args = ap.parse_args()

    cases = []
    for name in sorted(os.listdir(args.data)) if os.path.isdir(args.data) \
            else []:
        if name.endswith(".eml"):
            js = os.path.join(args.data, name[:-4] + ".json")
            if os.path.exists(js):
                cases.append((os.path.join(args.data, name), js))
    if not cases:
        print("skipped: no golden cases in %s" % args.data)
        return 77
    if not os.access(args.mailroom, os.X_OK):
        print("FAIL: mailroom binary not found: %s" % args.mailroom)
        return 1

    events, notes = mailroom_fields.run_mailroom(args.mailroom,
                                                 [c[0] for c in cases])
    for n in notes:
        print("note:", n)
    failed = 0
    for eml, js in cases:
        with open(js, encoding="utf-8") as fh:
            exp = json.load(fh)
        ev = events.get(eml, {"error": "no output"})
        if "error" in ev and "type" not in ev:
            errs = ["parse failed: %s" % ev["error"]]
        else:
            errs = mismatches(exp, ev, "$")
        name = os.path.basename(eml)
        if errs:
            failed += 1
            print("FAIL %s" % name)
            for e in errs:
                print("   " + e)
        else:
            print("ok   %s" % name)
    print("%d/%d golden cases pass" % (len(cases) - failed, len(cases)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
