#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The content benchmark: mailroom's sanitizer and html->text vs DOMPurify
and html-to-text, on the HTML bodies of the parse benchmark's corpus.

1. The corpus of bench/gen_corpus.py is made once into BUILD/bench-corpus
   (parse_bench.py's code, same count, seed and stamp); `mailroom parse
   --jsonl` pulls the decoded `html` of every message that has one into
   BUILD/bench-content/bodies.jsonl ({"id": file, "html": ...} a line).
2. Two drivers read that file, load every body, and time whole passes over
   all of them (one untimed pass first), single thread:
     mailroom  BUILD/bench/content_bench (bench/content_bench.c):
               mr_html_sanitize with a cid resolver and remote images off,
               and mr_html_to_text
     node      node bench/content/dompurify_bench.mjs: DOMPurify in one
               jsdom window (default configuration: the comparison; and a
               configuration closer to mailroom's rules, shown beside it),
               DOMPurify in headless Chromium (default configuration,
               shown beside it; skipped without $CHROMIUM or
               /usr/bin/chromium), and html-to-text; packages pinned by
               bench/content/package-lock.json, installed with `npm ci`
               into BUILD/bench-content-node (never into the source tree)
   One process per driver and operation, so peak RSS (bench/maxrss.c) is
   the operation's; the two drivers alternate which goes first, --reps
   times; the table shows the median MB/s and the highest peak RSS.
3. Prints the table, the ratios and PASS/MISS for the target (sanitizer
   MB/s at least 5x DOMPurify's, default configuration); writes
   everything to BUILD/bench-content.json.

Exit status 0 whatever the figures: it is a benchmark, not a test. 1 when
a driver fails (exit status, bad JSON, outputs that differ between runs),
2 when content_bench is not built (`make bench-content` builds it).

Usage: content_bench.py [--build DIR] [--reps N] [--min-seconds S]
                        [--count N] [--seed N] [--drivers mailroom,node]
                        [--content-bench PATH]
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import parse_bench  # noqa: E402  (the corpus and maxrss helpers)

TARGET = 5.0
NODE_PKGS = ["dompurify", "jsdom", "html-to-text", "playwright-core"]
# (operation, driver, driver's op name, label)
ROWS = [
    ("sanitize", "mailroom", "sanitize", "mailroom"),
    ("sanitize", "node", "sanitize", "DOMPurify {dompurify} (jsdom {jsdom})"),
    ("sanitize", "node", "sanitize-mail",
     "DOMPurify, mail-like config"),
    ("sanitize", "node", "sanitize-chromium",
     "DOMPurify in Chromium {chromium}"),
    ("html->text", "mailroom", "text", "mailroom"),
    ("html->text", "node", "text", "html-to-text {html-to-text}"),
]


class Failed(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- input ------------------------------------------------------------------

def extract_bodies(mailroom, msgs, out_path):
    """mailroom parse --jsonl over the corpus -> (bodies, bytes, largest)."""
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    p = subprocess.Popen([mailroom, "parse", "--jsonl", msgs],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = size = largest = 0
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for line in p.stdout:
            rec = json.loads(line)
            html = rec.get("html")
            if not html:
                continue
            b = len(html.encode("utf-8", "surrogatepass"))
            n += 1
            size += b
            largest = max(largest, b)
            out.write(json.dumps({"id": os.path.basename(rec["file"]),
                                  "html": html}) + "\n")
    err = p.stderr.read().decode("utf-8", "replace")
    if p.wait() != 0:
        raise Failed("mailroom parse exited %d: %s" % (p.returncode,
                                                       err[-300:]))
    os.replace(tmp, out_path)
    return n, size, largest


def node_ready(build):
    """npm ci into BUILD/bench-content-node when node_modules is missing or
    the pinned versions changed -> (node, modules dir, versions) or a
    reason it cannot run (str)."""
    node = shutil.which("node") or shutil.which("nodejs")
    npm = shutil.which("npm")
    if node is None or npm is None:
        return "node/npm not installed (Debian: nodejs npm)"
    prefix = os.path.join(build, "bench-content-node")
    modules = os.path.join(prefix, "node_modules")
    src = os.path.join(HERE, "content")
    fresh = all(os.path.isdir(os.path.join(modules, p)) for p in NODE_PKGS)
    for name in ("package.json", "package-lock.json"):
        dst = os.path.join(prefix, name)
        with open(os.path.join(src, name), "rb") as f:
            want = f.read()
        have = None
        if os.path.exists(dst):
            with open(dst, "rb") as f:
                have = f.read()
        if have != want:
            fresh = False
            os.makedirs(prefix, exist_ok=True)
            with open(dst, "wb") as f:
                f.write(want)
    if not fresh:
        log("npm ci --prefix %s (%s)" % (prefix, ", ".join(NODE_PKGS)))
        r = subprocess.run([npm, "ci", "--prefix", prefix, "--no-audit",
                            "--no-fund"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            log(r.stderr.decode("utf-8", "replace")[-800:])
            return "npm ci failed in %s" % prefix
    versions = {}
    for p in NODE_PKGS:
        with open(os.path.join(modules, p, "package.json")) as f:
            versions[p] = json.load(f)["version"]
    versions["node"] = subprocess.run(
        [node, "--version"], stdout=subprocess.PIPE,
        universal_newlines=True).stdout.strip()
    return node, modules, versions


# ---- runs -------------------------------------------------------------------

def run_driver(argv, env=None):
    """One driver process through bench/maxrss.c -> (its JSON, peak RSS)."""
    rss_file = None
    if parse_bench.MAXRSS:
        rss_file = os.path.join(os.path.dirname(parse_bench.MAXRSS),
                                "bench-maxrss.out")
        argv = [parse_bench.MAXRSS, rss_file] + argv
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    rss = 0
    if rss_file and os.path.exists(rss_file):
        with open(rss_file) as f:
            rss = int(f.read().split()[0]) * 1024
    err = err.decode("utf-8", "replace")
    for line in err.splitlines():
        log("  " + line)
    if p.returncode != 0:
        raise Failed("%s exited %d" % (" ".join(argv[-6:]), p.returncode))
    try:
        rec = json.loads(out)
    except ValueError:
        raise Failed("%s printed no JSON: %r" % (argv[-1], out[:200]))
    return rec, rss


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3,
                    help="runs of every driver and operation (median kept)")
    ap.add_argument("--min-seconds", type=float, default=2.0,
                    help="timed passes go on at least this long per run")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20250106)
    ap.add_argument("--drivers", default="mailroom,node")
    ap.add_argument("--content-bench", default=None,
                    help="the C driver (default BUILD/bench/content_bench)")
    args = ap.parse_args(argv)
    build = os.path.abspath(args.build)
    wanted = [d for d in args.drivers.split(",") if d]
    t_start = time.perf_counter()

    cb = args.content_bench or os.path.join(build, "bench", "content_bench")
    mailroom = os.path.join(build, "mailroom")
    need = [(mailroom, "make build")]
    if "mailroom" in wanted:
        need.append((cb, "make bench-content"))
    for exe, how in need:
        if not os.access(exe, os.X_OK):
            log("%s not built (%s builds it)" % (exe, how))
            return 2

    msgs, _, _ = parse_bench.corpus(build, args.count, args.seed)
    bodies_path = os.path.join(build, "bench-content", "bodies.jsonl")
    try:
        n_bodies, size, largest = extract_bodies(mailroom, msgs, bodies_path)
    except Failed as e:
        log(str(e))
        return 1
    log("bodies: %d HTML bodies of %d messages, %s (largest %s) in %s"
        % (n_bodies, len(os.listdir(msgs)), parse_bench.fmt_mb(size),
           "%.1f KB" % (largest / 1e3), bodies_path))
    parse_bench.MAXRSS = parse_bench.maxrss_tool(build)
    if not parse_bench.MAXRSS:
        log("no C compiler: no peak RSS")

    cmds = {}
    versions = {}
    skipped = {}
    if "mailroom" in wanted:
        cmds["mailroom"] = ([cb], None)
    if "node" in wanted:
        ready = node_ready(build)
        if isinstance(ready, str):
            skipped["node"] = ready
            log("node: skipped, " + ready)
        else:
            node, modules, versions = ready
            env = dict(os.environ, BENCH_NODE_MODULES=modules)
            cmds["node"] = ([node, os.path.join(HERE, "content",
                                                "dompurify_bench.mjs")], env)

    rows = [r for r in ROWS if r[1] in cmds]
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if "node" in cmds and not os.access(chromium, os.X_OK):
        skipped["node sanitize-chromium"] = "%s not installed" % chromium
        log("DOMPurify in Chromium: skipped, %s not installed" % chromium)
        rows = [r for r in rows if r[2] != "sanitize-chromium"]
    runs = {(r[1], r[2]): [] for r in rows}
    failed = []
    order = [d for d in ("mailroom", "node") if d in cmds]
    for rep in range(args.reps):
        # Alternate which driver goes first: a machine that slows down (or
        # warms up) over the run then favours neither.
        for drv in (order if rep % 2 == 0 else order[::-1]):
            prefix, env = cmds[drv]
            for _, d, op, _ in rows:
                if d != drv:
                    continue
                log("run %d/%d: %s %s" % (rep + 1, args.reps, drv, op))
                try:
                    rec, rss = run_driver(
                        prefix + ["--op", op, "--min-seconds",
                                  str(args.min_seconds), bodies_path], env)
                except Failed as e:
                    log("  " + str(e))
                    failed.append(str(e))
                    continue
                r = rec["ops"][op]
                if rec["bodies"] != n_bodies or rec["bytes"] != size:
                    failed.append("%s %s read %d bodies, %d bytes; the file "
                                  "has %d, %d" % (drv, op, rec["bodies"],
                                                  rec["bytes"], n_bodies,
                                                  size))
                r["peak_rss"] = rss
                if "chromium" in r:
                    versions["chromium"] = r["chromium"]
                runs[(drv, op)].append(r)

    figures = {}
    for (drv, op), rs in runs.items():
        if not rs:
            continue
        sums = {r["checksum"] for r in rs}
        if len(sums) > 1:
            failed.append("%s %s: outputs differ between runs" % (drv, op))
        figures["%s/%s" % (drv, op)] = {
            "mb_s": statistics.median(r["bytes_per_s"] for r in rs) / 1e6,
            "mb_s_runs": [r["bytes_per_s"] / 1e6 for r in rs],
            "passes": [r["passes"] for r in rs],
            "peak_rss": max(r["peak_rss"] for r in rs),
            "out_bytes": rs[0]["out_bytes"],
            "errors": max(r["errors"] for r in rs),
            "checksum": rs[0]["checksum"],
        }

    print()
    print("Content benchmark: %d HTML bodies (of %d messages), %s, largest "
          "%.1f KB" % (n_bodies, len(os.listdir(msgs)),
                       parse_bench.fmt_mb(size), largest / 1e3))
    print("Single thread, whole passes over all bodies for >= %.1f s per run"
          ", median of %d runs, drivers alternating." % (args.min_seconds,
                                                        args.reps))
    if versions:
        print("Node %s." % versions["node"])
    print()
    hdr = "%-11s %-36s %9s %7s %10s %7s" % (
        "operation", "implementation", "MB/s", "passes", "peak RSS",
        "errors")
    print(hdr)
    print("-" * len(hdr))
    for what, drv, op, label in rows:
        f = figures.get("%s/%s" % (drv, op))
        name = label.format_map(collections.defaultdict(str, versions))
        if f is None:
            print("%-11s %-36s %9s" % (what, name, "failed"))
            continue
        print("%-11s %-36s %9.2f %7d %10s %7d" % (
            what, name, f["mb_s"], min(f["passes"]),
            parse_bench.fmt_mb(f["peak_rss"]), f["errors"]))
    for drv, why in skipped.items():
        print("%s: skipped, %s" % (drv, why))

    def ratio(a, b):
        fa, fb = figures.get(a), figures.get(b)
        if fa and fb and fb["mb_s"] > 0:
            return fa["mb_s"] / fb["mb_s"]
        return None

    ratios = {
        "sanitize_vs_dompurify": ratio("mailroom/sanitize", "node/sanitize"),
        "sanitize_vs_dompurify_mail": ratio("mailroom/sanitize",
                                            "node/sanitize-mail"),
        "sanitize_vs_dompurify_chromium": ratio("mailroom/sanitize",
                                                "node/sanitize-chromium"),
        "text_vs_html_to_text": ratio("mailroom/text", "node/text"),
    }
    shown = [(k, v) for k, v in ratios.items() if v is not None]
    if shown:
        print()
        print("mailroom / peer, MB/s:")
        for k, v in shown:
            print("  %-32s %6.1fx" % (k, v))
    r = ratios["sanitize_vs_dompurify"]
    if r is not None:
        print()
        print("Target: %s sanitizer MB/s >= %.0fx DOMPurify (default "
              "config): %.1fx" % ("PASS" if r >= TARGET else "MISS", TARGET,
                                  r))
    if failed:
        print()
        print("Errors:")
        for e in failed:
            print("  " + e)

    report = {
        "corpus": {"messages": len(os.listdir(msgs)), "count": args.count,
                   "seed": args.seed},
        "bodies": {"count": n_bodies, "bytes": size, "largest": largest,
                   "file": bodies_path},
        "reps": args.reps, "min_seconds": args.min_seconds,
        "versions": versions, "figures": figures, "ratios": ratios,
        "target": {"sanitize_vs_dompurify": TARGET,
                   "met": r is not None and r >= TARGET},
        "skipped": skipped, "errors": failed,
        "elapsed": time.perf_counter() - t_start,
    }
    with open(os.path.join(build, "bench-content.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    log("figures in %s (%.0f s)" % (os.path.join(build, "bench-content.json"),
                                    report["elapsed"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
