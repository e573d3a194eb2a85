#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The parse benchmark: mailroom vs GMime 3, Python's email, Node mailparser.

Generates the support-inbox corpus of bench/gen_corpus.py once into
BUILD/bench-corpus (again only when the generator or --count changed), then
runs each parser as ONE process over the whole corpus, each extracting the
same fields and decoding every body and attachment:

  mailroom   BUILD/mailroom parse --jsonl DIR > /dev/null
  gmime      BUILD/tests/gmime_fields --quiet DIR  (tests/diff/gmime_fields.c)
  python     /usr/bin/python3 tests/diff/py_fields.py --quiet DIR
  node       node bench/node/mailparser_fields.js --quiet DIR

and measures wall time (best of --runs for the fast parsers, at least 10
on the messages without attachments, one run for
the slow ones), MB/s, messages/s, peak RSS (the child's ru_maxrss from
wait4), and messages/s on the messages without attachments (a second
directory of hard links). A second, untimed pass of every parser prints
its fields, which are compared with what the generator says each message
should parse to (expected.jsonl): mismatches per field, per parser.

Prints the table, the ratios, the mismatch counts and PASS/MISS for each
target of the issue; writes everything to BUILD/bench-parse.json (with the
mismatching files). Exit status 0 whatever the figures: it is a
benchmark, not a test (2 only when mailroom itself cannot be run).

Usage: parse_bench.py [--build DIR] [--count N] [--runs N]
                      [--parsers mailroom,gmime,python,node] [--show N]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "diff"))

PARSERS = ["mailroom", "gmime", "python", "node"]
FAST = {"mailroom", "gmime"}
LABEL = {"mailroom": "mailroom", "gmime": "GMime 3", "python":
         "Python email", "node": "Node mailparser"}
FIELDS = ["missing", "subject", "from", "to", "cc", "date", "message_id",
          "in_reply_to", "references", "text", "html", "att_count",
          "att_filename", "att_type", "att_content", "att_rfc822_content"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- corpus -----------------------------------------------------------------

def corpus(build, count, seed):
    """-> (corpus dir, noatt dir, expected {basename: record})."""
    out = os.path.join(build, "bench-corpus")
    gen = os.path.join(HERE, "gen_corpus.py")
    with open(gen, "rb") as f:
        stamp = "%s count=%d seed=%d\n" % (
            hashlib.sha256(f.read()).hexdigest(), count, seed)
    stamp_path = os.path.join(out, "STAMP")
    have = None
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            have = f.read()
    if have != stamp:
        if os.path.isdir(out):
            shutil.rmtree(out)
        log("generating the corpus (%d messages) into %s" % (count, out))
        subprocess.run([sys.executable, gen, "--count", str(count),
                        "--seed", str(seed), out], check=True)
        expected = load_expected(out)
        noatt = os.path.join(out, "noatt")
        os.makedirs(noatt)
        for name, rec in sorted(expected.items()):
            if not rec["attachments"]:
                src = os.path.join(out, "msgs", name)
                dst = os.path.join(noatt, name)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        with open(stamp_path, "w") as f:
            f.write(stamp)
    else:
        expected = load_expected(out)
    return os.path.join(out, "msgs"), os.path.join(out, "noatt"), expected


def load_expected(out):
    exp = {}
    with open(os.path.join(out, "expected.jsonl"), encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            exp[rec["file"]] = rec
    return exp


def dir_stats(d):
    n = 0
    size = 0
    largest = 0
    for name in os.listdir(d):
        s = os.path.getsize(os.path.join(d, name))
        n += 1
        size += s
        largest = max(largest, s)
    return n, size, largest


def warm(d):
    """Reads every file once, so no parser pays for the first disk read."""
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            while f.read(1 << 20):
                pass


# ---- parsers ----------------------------------------------------------------

def commands(build):
    """-> {parser: (argv prefix, quiet flag or None, why unavailable)}."""
    cmds = {}
    mr = os.path.join(build, "mailroom")
    # --mime-only: the peers parse MIME and nothing else; the content stage
    # (sanitizer, visible reply) is measured by make bench-content.
    cmds["mailroom"] = ([mr, "parse", "--jsonl", "--mime-only"], None,
                        None if os.access(mr, os.X_OK) else
                        "%s not built" % mr)
    gm = os.path.join(build, "tests", "gmime_fields")
    cmds["gmime"] = ([gm], "--quiet", None if os.access(gm, os.X_OK) else
                     "%s not built (libgmime-3.0-dev)" % gm)
    py = os.path.join(ROOT, "tests", "diff", "py_fields.py")
    cmds["python"] = (["/usr/bin/python3", py], "--quiet",
                      None if os.path.exists(py) else "%s missing" % py)
    js = os.path.join(HERE, "node", "mailparser_fields.js")
    node = shutil.which("node") or shutil.which("nodejs")
    why = None
    if node is None:
        why = "node not installed (Debian: nodejs)"
    elif not node_modules_ready():
        why = "npm install failed in bench/node"
    cmds["node"] = ([node or "node", js], "--quiet", why)
    return cmds


def node_modules_ready():
    nm = os.path.join(HERE, "node", "node_modules", "mailparser")
    if os.path.isdir(nm):
        return True
    npm = shutil.which("npm")
    if npm is None:
        return False
    log("npm ci in bench/node (mailparser)")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"],
                       cwd=os.path.join(HERE, "node"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(r.stderr.decode("utf-8", "replace")[-500:])
    return os.path.isdir(nm)


def maxrss_tool(build):
    """Compiles bench/maxrss.c into BUILD once -> its path, or None."""
    src = os.path.join(HERE, "maxrss.c")
    exe = os.path.join(build, "bench-maxrss")
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
        return exe
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    r = subprocess.run([cc, "-O2", "-std=c17", "-D_GNU_SOURCE", "-o", exe,
                        src], stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(r.stderr.decode("utf-8", "replace")[-500:])
        return None
    return exe


MAXRSS = None   # set in main()


def run_timed(argv):
    """One child, output discarded -> (seconds, peak RSS bytes, exit).

    Through bench/maxrss.c when it builds: a child's ru_maxrss counts the
    RSS of the process that forked it (here, this driver) up to its exec."""
    rss_file = None
    if MAXRSS:
        rss_file = os.path.join(os.path.dirname(MAXRSS), "bench-maxrss.out")
        argv = [MAXRSS, rss_file] + argv
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    # stderr is small (notes); read it before reaping so a chatty child
    # cannot block on a full pipe.
    err = p.stderr.read()
    p.stderr.close()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = ru.ru_maxrss * 1024
    if rss_file:
        with open(rss_file) as f:
            rss = int(f.read().split()[0]) * 1024
    if p.returncode != 0:
        log("  %s exited %d: %s" % (os.path.basename(argv[-2]), p.returncode,
                                   err.decode("utf-8", "replace")[-300:]))
    return dt, rss, p.returncode


def timed_argv(name, cmd, d):
    prefix, quiet, _ = cmd
    return prefix + ([quiet] if quiet else []) + [d]


def measure(name, cmd, d, runs):
    best = None
    peak = 0
    rc = 0
    for _ in range(runs):
        dt, rss, rc = run_timed(timed_argv(name, cmd, d))
        best = dt if best is None else min(best, dt)
        peak = max(peak, rss)
    return {"seconds": best, "peak_rss": peak, "exit": rc, "runs": runs}


def fields_of(name, cmd, d, files):
    """The correctness pass: -> {basename: fields record}."""
    prefix = cmd[0]
    out = {}
    if name == "mailroom":
        import mailroom_fields
        events, notes = mailroom_fields.run_mailroom(prefix[0], files)
        for n in notes:
            log("  " + n)
        for path, ev in events.items():
            out[os.path.basename(path)] = mailroom_fields.event_fields(
                ev, path)
        return out
    p = subprocess.run(prefix + [d], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        log("  %s exited %d: %s" % (name, p.returncode,
                                   p.stderr.decode("utf-8", "replace")
                                   [-300:]))
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "file" in rec:
            out[os.path.basename(rec["file"])] = rec
    return out


# ---- comparison -------------------------------------------------------------

WS = re.compile(r"[ \t\r\n]+")


def norm_text(s):
    if s is None:
        return ""
    return WS.sub(" ", s).strip()


def norm_addrs(v):
    out = []
    for a in v or []:
        if not isinstance(a, dict):
            out.append((None, None))
            continue
        out.append((a.get("name") or None, a.get("email") or None))
    return out


def compare(exp, got):
    """-> [(field, expected, got)] of the fields that differ."""
    if got is None or "error" in got:
        return [("missing", None, (got or {}).get("error"))]
    bad = []
    for f in ("subject", "date", "message_id", "in_reply_to"):
        if exp.get(f) != got.get(f):
            bad.append((f, exp.get(f), got.get(f)))
    if list(exp.get("references") or []) != list(got.get("references")
                                                 or []):
        bad.append(("references", exp.get("references"),
                    got.get("references")))
    for f in ("from", "to", "cc"):
        if norm_addrs(exp.get(f)) != norm_addrs(got.get(f)):
            bad.append((f, exp.get(f), got.get(f)))
    for f in ("text", "html"):
        if norm_text(exp.get(f)) != norm_text(got.get(f)):
            bad.append((f, exp.get(f), got.get(f)))
    ea = exp.get("attachments") or []
    ga = got.get("attachments") or []
    if len(ea) != len(ga):
        bad.append(("att_count", [(a["content_type"], a["filename"])
                                  for a in ea],
                    [(a.get("content_type"), a.get("filename"))
                     for a in ga]))
        return bad
    seen = set()
    for i, (e, g) in enumerate(zip(ea, ga)):
        checks = [("att_filename", e["filename"], g.get("filename")),
                  ("att_type", e["content_type"],
                   (g.get("content_type") or "").lower())]
        content = "att_rfc822_content" \
            if e["content_type"] == "message/rfc822" else "att_content"
        checks.append((content, (e["size"], e["sha256"]),
                       (g.get("size"), g.get("sha256"))))
        for f, ev, gv in checks:
            if ev != gv and f not in seen:
                seen.add(f)
                bad.append((f, "#%d %r" % (i, ev), "#%d %r" % (i, gv)))
    return bad


def mismatches(expected, got):
    """-> {field: [(file, expected, got)]}."""
    out = {f: [] for f in FIELDS}
    for name in sorted(expected):
        for f, ev, gv in compare(expected[name], got.get(name)):
            out[f].append((name, ev, gv))
    return out


# ---- report -----------------------------------------------------------------

def fmt_mb(n):
    return "%.1f MB" % (n / 1e6)


def short(v, n=120):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "..."


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20250106)
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs of the fast parsers (best kept)")
    ap.add_argument("--parsers", default=",".join(PARSERS))
    ap.add_argument("--show", type=int, default=5,
                    help="mismatching files shown per field for mailroom")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the correctness pass")
    args = ap.parse_args(argv)
    build = os.path.abspath(args.build)
    wanted = [p for p in args.parsers.split(",") if p]
    t_start = time.perf_counter()

    all_dir, noatt_dir, expected = corpus(build, args.count, args.seed)
    n_all, size_all, largest = dir_stats(all_dir)
    n_na, size_na, _ = dir_stats(noatt_dir)
    log("corpus: %d messages, %s (largest %s); %d without attachments, %s"
        % (n_all, fmt_mb(size_all), fmt_mb(largest), n_na, fmt_mb(size_na)))
    warm(all_dir)
    global MAXRSS
    MAXRSS = maxrss_tool(build)
    if MAXRSS:
        base = run_timed(["/bin/true"])[1]
        log("peak RSS measured with bench/maxrss.c (/bin/true: %.1f MB)"
            % (base / 1e6))
    else:
        log("no C compiler: peak RSS from wait4, inflated by this driver")

    cmds = commands(build)
    results = {}
    for name in wanted:
        cmd = cmds.get(name)
        if cmd is None:
            log("unknown parser %s" % name)
            continue
        if cmd[2]:
            log("%s: skipped, %s" % (LABEL[name], cmd[2]))
            results[name] = {"skipped": cmd[2]}
            continue
        runs = args.runs if name in FAST else 1
        log("%s: timing the whole corpus (%d run%s)" % (
            LABEL[name], runs, "s" if runs > 1 else ""))
        whole = measure(name, cmd, all_dir, runs)
        log("  %.2f s" % whole["seconds"])
        # The runs without attachments are short (30 to 200 ms for the fast
        # parsers), where one unlucky scheduling moment is a large share:
        # best of at least 10 for those, the same for every fast parser.
        na_runs = max(runs, 10) if name in FAST else 1
        log("%s: timing the messages without attachments (%d run%s)" % (
            LABEL[name], na_runs, "s" if na_runs > 1 else ""))
        na = measure(name, cmd, noatt_dir, na_runs)
        log("  %.2f s" % na["seconds"])
        results[name] = {"whole": whole, "noatt": na}

    checks = {}
    if not args.no_check:
        files = [os.path.join(all_dir, n) for n in sorted(
            os.listdir(all_dir))]
        for name in wanted:
            cmd = cmds.get(name)
            if cmd is None or cmd[2]:
                continue
            log("%s: correctness pass" % LABEL[name])
            got = fields_of(name, cmd, all_dir, files)
            checks[name] = mismatches(expected, got)

    ran = [n for n in wanted if n in results and "whole" in results[n]]
    print()
    print("Parse benchmark: %d messages, %s (%d without attachments, %s); "
          "largest message %s" % (n_all, fmt_mb(size_all), n_na,
                                   fmt_mb(size_na), fmt_mb(largest)))
    print("One process per parser over the whole corpus, wall time best of "
          "%d for mailroom and GMime, 1 for the others." % args.runs)
    print()
    hdr = "%-16s %9s %10s %9s %15s %10s" % (
        "parser", "seconds", "MB/s", "msgs/s", "no-att msgs/s", "peak RSS")
    print(hdr)
    print("-" * len(hdr))
    figures = {}
    for name in ran:
        w = results[name]["whole"]
        na = results[name]["noatt"]
        fig = {"seconds": w["seconds"],
               "mb_s": size_all / 1e6 / w["seconds"],
               "msgs_s": n_all / w["seconds"],
               "noatt_msgs_s": n_na / na["seconds"],
               "noatt_mb_s": size_na / 1e6 / na["seconds"],
               "peak_rss": max(w["peak_rss"], na["peak_rss"]),
               "exit": w["exit"]}
        figures[name] = fig
        print("%-16s %9.2f %10.1f %9.0f %15.0f %10s" % (
            LABEL[name], fig["seconds"], fig["mb_s"], fig["msgs_s"],
            fig["noatt_msgs_s"], fmt_mb(fig["peak_rss"])))
    for name in wanted:
        if "skipped" in results.get(name, {}):
            print("%-16s skipped: %s" % (LABEL[name],
                                         results[name]["skipped"]))

    if "mailroom" in figures and len(figures) > 1:
        m = figures["mailroom"]
        print()
        print("mailroom is:")
        for name in ran:
            if name == "mailroom":
                continue
            o = figures[name]
            print("  %5.1fx %s in MB/s, %5.1fx in msgs/s, %5.1fx in msgs/s "
                  "without attachments, %4.2fx its peak RSS" % (
                      m["mb_s"] / o["mb_s"], LABEL[name],
                      m["msgs_s"] / o["msgs_s"],
                      m["noatt_msgs_s"] / o["noatt_msgs_s"],
                      m["peak_rss"] / o["peak_rss"]))

    if checks:
        print()
        print("Mismatches against what the generator wrote (messages per "
              "field, of %d):" % n_all)
        names = [n for n in wanted if n in checks]
        print("%-20s" % "field" + "".join("%17s" % LABEL[n] for n in names))
        for f in FIELDS:
            row = [len(checks[n][f]) for n in names]
            print("%-20s" % f + "".join("%17d" % x for x in row))
        if "mailroom" in checks:
            shown = False
            for f in FIELDS:
                bad = checks["mailroom"][f]
                if not bad:
                    continue
                if not shown:
                    print()
                    print("mailroom mismatches (first %d per field):"
                          % args.show)
                    shown = True
                for fname, ev, gv in bad[:args.show]:
                    print("  %s %s (%s)" % (f, fname,
                                            expected[fname].get("kind")))
                    print("    expected %s" % short(ev))
                    print("    got      %s" % short(gv))

    targets = []
    if "mailroom" in figures:
        m = figures["mailroom"]
        g = figures.get("gmime")
        py = figures.get("python")
        if g:
            targets.append(("MB/s >= 3x GMime (whole corpus)",
                            m["mb_s"] / g["mb_s"], 3.0))
            targets.append(("msgs/s >= 5x GMime (no attachments)",
                            m["noatt_msgs_s"] / g["noatt_msgs_s"], 5.0))
        if py:
            targets.append(("MB/s >= 30x Python email",
                            m["mb_s"] / py["mb_s"], 30.0))
        small = min(os.listdir(all_dir),
                    key=lambda n: (os.path.getsize(os.path.join(all_dir, n)),
                                   n))
        floor = run_timed(cmds["mailroom"][0] + [os.path.join(all_dir,
                                                              small)])[1]
        m["rss_smallest_message"] = floor
        targets.append(("peak RSS < 2x the largest message (%s)"
                        % fmt_mb(2 * largest),
                        2.0 * largest / m["peak_rss"], 1.0))
        print()
        print("Targets (single thread):")
        for what, ratio, need in targets:
            shown = ("%.1fx" % ratio) if need > 1 else (
                "%s (%s on the smallest message)" % (
                    fmt_mb(m["peak_rss"]), fmt_mb(m["rss_smallest_message"])))
            print("  %-4s %-46s %s" % ("PASS" if ratio >= need else "MISS",
                                       what, shown))

    report = {
        "corpus": {"messages": n_all, "bytes": size_all, "largest": largest,
                   "noatt_messages": n_na, "noatt_bytes": size_na,
                   "count": args.count, "seed": args.seed},
        "figures": figures,
        "skipped": {n: r["skipped"] for n, r in results.items()
                    if "skipped" in r},
        "targets": [{"target": t, "ratio": r, "need": n, "pass": r >= n}
                    for t, r, n in targets],
        "mismatches": {n: {f: [x[0] for x in v] for f, v in c.items() if v}
                       for n, c in checks.items()},
    }
    path = os.path.join(build, "bench-parse.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print()
    print("Full report: %s (%.0f s)" % (path, time.perf_counter() - t_start))
    if "mailroom" in wanted and "mailroom" not in figures:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
