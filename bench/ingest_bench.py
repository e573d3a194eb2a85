#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The ingest benchmark: SMTP load against `mailroom serve` (default store).

Compiles bench/smtp_load.c into BUILD/bench-smtp-load (again only when the
source is newer), starts

  BUILD/mailroom serve --data DIR --smtp 127.0.0.1:P --http 127.0.0.1:Q
                       --lmtp off

with no configuration (the default SQLite store and blob folder) in a new
folder under BUILD (not /tmp, which may be a tmpfs where fsync costs
nothing), waits for its SMTP greeting, and runs three passes, each with its
own seed so that no pass repeats another's Message-IDs:

  1. warm-up: --warmup messages (default 200), then wait for the queue to
     drain;
  2. measured: --count messages (5000) over --connections (8) with
     pipelining. Reports acknowledged msgs/s and the ack latency (p50,
     p99: from the final "." to the 250) as smtp_load measures them, then
     polls GET /metrics until mailroom_queue_ready + mailroom_queue_leased
     is 0 and reports end-to-end stored msgs/s: messages stored, over the
     time from the start of the load to the drained queue;
  3. fsyncs (only with strace): --strace-count messages (1000) with
     `strace -f -c -e trace=fsync,fdatasync,sync_file_range -p PID`
     attached to the server, from the start of the load until the queue
     has drained, so both the acknowledgement path and the workers'
     commits are counted; calls / acknowledged messages. A separate pass
     because strace slows every traced call: its msgs/s are not the
     figures.

Then SIGTERM, and the server must exit 0 within --stop-timeout-s.

Prints a summary and PASS/MISS against the issue's target (2,000 msgs/s
acknowledged durably, end to end, on this 2-core machine); writes
everything to BUILD/bench-ingest.json and the server's log to
BUILD/bench-ingest-serve.log. Exit status 0 whatever the figures (a
benchmark, not a test); 1 when it could not run (no mailroom, no
compiler, the server did not start).

Usage: ingest_bench.py [--build DIR] [--count N] [--connections N]
                       [--size BYTES] [--warmup N] [--strace-count N]
                       [--no-strace] [--seed N] [--timeout-s S] [--keep]
"""
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = 2000.0  # msgs/s, acknowledged durably, end to end (issue 3)
SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class CannotRun(Exception):
    pass


# ---- the load generator -----------------------------------------------------

def load_tool(build):
    """Compiles bench/smtp_load.c into BUILD once -> its path."""
    src = os.path.join(HERE, "smtp_load.c")
    exe = os.path.join(build, "bench-smtp-load")
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
        return exe
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise CannotRun("no C compiler (Debian: gcc)")
    r = subprocess.run([cc, "-O2", "-pthread", "-std=c17", "-D_GNU_SOURCE",
                        "-o", exe, src], stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise CannotRun("cannot compile %s:\n%s" % (
            src, r.stderr.decode("utf-8", "replace")[-1000:]))
    return exe


def run_load(exe, port, count, args, seed):
    """One smtp_load run -> (its JSON summary, its CPU seconds)."""
    argv = [exe, "--host", "127.0.0.1", "--port", str(port),
            "--connections", str(args.connections), "--count", str(count),
            "--size", str(args.size), "--seed", str(seed),
            "--reply-percent", str(args.reply_percent),
            "--timeout-s", str(args.timeout_s)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=args.timeout_s + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                before.ru_stime)
    err = p.stderr.decode("utf-8", "replace").strip()
    if err:
        log("  smtp_load: " + err.replace("\n", "\n  smtp_load: ")[-2000:])
    if p.returncode != 0:
        raise CannotRun("smtp_load exited %d" % p.returncode)
    return json.loads(p.stdout), cpu


# ---- the server -------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode().strip() or "unknown"


def cpu_seconds(pid):
    """User + system CPU of a live process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Server:
    def __init__(self, mailroom, data, log_path):
        self.smtp = free_port()
        self.http = free_port()
        argv = [mailroom, "serve", "--data", data,
                "--smtp", "127.0.0.1:%d" % self.smtp,
                "--http", "127.0.0.1:%d" % self.http, "--lmtp", "off"]
        self.log_path = log_path
        self.log = open(log_path, "wb")
        log("starting: " + " ".join(argv))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)

    def log_tail(self, n=20):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("  | " + x for x in lines[-n:])

    def wait_smtp(self, timeout):
        """Until the SMTP port answers 220 (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CannotRun("mailroom serve exited %d at start-up:\n%s"
                                % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.smtp),
                                              timeout=2) as s:
                    line = s.makefile("rb").readline(512)
                    if line.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise CannotRun("no SMTP greeting on port %d after %ds:\n%s"
                        % (self.smtp, timeout, self.log_tail()))

    def metrics(self):
        """GET /metrics -> {name or name{labels}: value}, or None."""
        url = "http://127.0.0.1:%d/metrics" % self.http
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            return None
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                pass
        return out

    def stop(self, timeout):
        """SIGTERM -> exit status, or None when it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


def queue_depth(m):
    if not m or "mailroom_queue_ready" not in m or \
            "mailroom_queue_leased" not in m:
        return None
    return m["mailroom_queue_ready"] + m["mailroom_queue_leased"]


def stored(m):
    return m.get("mailroom_messages_stored") if m else None


def smtp_acked(m):
    return m.get('mailroom_messages_acked_total{channel="smtp"}') if m \
        else None


def wait_drained(srv, timeout):
    """Polls /metrics until the queue is empty -> (monotonic time, metrics)
    or (None, last metrics) when it did not drain in time."""
    deadline = time.monotonic() + timeout
    m = None
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise CannotRun("mailroom serve exited %d during the run:\n%s"
                            % (srv.proc.returncode, srv.log_tail()))
        m = srv.metrics()
        if queue_depth(m) == 0:
            return time.monotonic(), m
        time.sleep(0.02)
    return None, m


class Sampler(threading.Thread):
    """Samples the queue depth while the load runs (its peak)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.peak = None
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            d = queue_depth(self.srv.metrics())
            if d is not None and (self.peak is None or d > self.peak):
                self.peak = d


def delta(after, before):
    if after is None or before is None:
        return None
    d = after - before
    return int(d) if d == int(d) else d


# ---- passes -----------------------------------------------------------------

def measured_pass(srv, exe, args, seed, count):
    m0 = srv.metrics()
    cpu0 = cpu_seconds(srv.proc.pid)
    sampler = Sampler(srv)
    sampler.start()
    t0 = time.monotonic()
    summary, load_cpu = run_load(exe, srv.smtp, count, args, seed)
    t_load = time.monotonic()
    sampler.done.set()
    sampler.join()
    t_drained, m1 = wait_drained(srv, args.drain_timeout_s)
    cpu1 = cpu_seconds(srv.proc.pid)
    res = {"load": summary, "load_cpu_s": round(load_cpu, 3),
           "server_cpu_s": None if cpu0 is None or cpu1 is None else
           round(cpu1 - cpu0, 3),
           "load_wall_s": round(t_load - t0, 3),
           "queue_peak": sampler.peak,
           "drained": t_drained is not None,
           "metrics_available": m0 is not None and queue_depth(m0) is not None}
    res["stored"] = delta(stored(m1), stored(m0))
    res["server_acked"] = delta(smtp_acked(m1), smtp_acked(m0))
    res["dead_jobs"] = delta(m1.get("mailroom_jobs_dead") if m1 else None,
                             m0.get("mailroom_jobs_dead") if m0 else None)
    res["duplicates"] = delta(
        m1.get("mailroom_duplicates_total") if m1 else None,
        m0.get("mailroom_duplicates_total") if m0 else None)
    res["parse_failures"] = delta(
        m1.get("mailroom_parse_failures_total") if m1 else None,
        m0.get("mailroom_parse_failures_total") if m0 else None)
    if t_drained is not None:
        e2e = t_drained - t0
        res["end_to_end_s"] = round(e2e, 3)
        n = res["stored"] if res["stored"] is not None else summary["acked"]
        res["stored_msgs_per_s"] = round(n / e2e, 1) if e2e > 0 else None
        res["drain_after_load_s"] = round(t_drained - t_load, 3)
    else:
        res["end_to_end_s"] = res["stored_msgs_per_s"] = None
    return res


def traced_tasks(pid):
    """-> (threads of pid, how many of them are traced)."""
    n = traced = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("TracerPid:"):
                        n += 1
                        traced += line.split()[1] != "0"
        except OSError:
            pass
    return n, traced


def parse_strace_summary(text):
    """strace -c table -> {syscall: calls}."""
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in SYNC_CALLS:
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                pass
    return calls


def fsync_pass(srv, exe, args, seed, build):
    strace = shutil.which("strace")
    if strace is None:
        return {"skipped": "strace not installed (Debian: strace)"}
    out = os.path.join(build, "bench-ingest-strace.txt")
    err_path = out + ".err"
    with open(err_path, "wb") as err:
        st = subprocess.Popen([strace, "-f", "-c", "-e",
                               "trace=" + ",".join(SYNC_CALLS), "-o", out,
                               "-p", str(srv.proc.pid)],
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err)
    # Every thread the server has now must be traced before the load
    # starts; the ones it starts later are followed by -f.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        n, traced = traced_tasks(srv.proc.pid)
        if n and traced == n:
            break
        if st.poll() is not None:
            break
        time.sleep(0.05)
    else:
        st.kill()
        st.wait()
        return {"skipped": "strace did not attach to every thread in 10 s"}
    if st.poll() is not None:
        with open(err_path, "rb") as f:
            why = f.read().decode("utf-8", "replace").strip()[-500:]
        return {"skipped": "strace could not attach: " + why}
    try:
        res = measured_pass(srv, exe, args, seed, args.strace_count)
    finally:
        st.send_signal(signal.SIGINT)  # detach; -c writes its table
        try:
            st.wait(30)
        except subprocess.TimeoutExpired:
            st.kill()
            st.wait()
    try:
        os.unlink(err_path)
        with open(out) as f:
            calls = parse_strace_summary(f.read())
    except OSError:
        return {"skipped": "strace wrote no summary"}
    total = sum(calls.values())
    acked = res["load"]["acked"]
    return {"calls": calls, "total": total, "acked": acked,
            "per_message": round(total / acked, 3) if acked else None,
            "traced_msgs_per_s": res["load"]["msgs_per_s"],
            "drained": res["drained"],
            "stored": res["stored"]}


# ---- report -----------------------------------------------------------------

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu,
            "kernel": platform.release()}


def fmt(v, spec="%.1f", none="n/a"):
    return none if v is None else spec % v


def verdict(v):
    return "n/a" if v is None else ("PASS" if v >= TARGET else "MISS")


def report(r):
    L = r["load"]
    p = r["measured"]
    f = r.get("fsync", {})
    print()
    print("Ingest: %d messages of ~%d bytes (%d%% replies to earlier ones) "
          "over %d SMTP connections (pipelining), mailroom serve with the "
          "default SQLite store"
          % (L["count"], L["size"], L.get("reply_percent", 33),
             L["connections"]))
    print("data folder on %s; %d CPUs (%s); warm-up %d messages"
          % (r["fs_type"], r["machine"]["cpus"], r["machine"]["cpu"],
             r["warmup"]))
    print()
    print("  acknowledged (250)       %6d of %d   (tempfail %d, rejected "
          "%d, unanswered %d, connection errors %d)"
          % (L["acked"], L["sent"], L["tempfail"], L["rejected"],
             L["unanswered"], L["errors"]))
    print("  acked msgs/s             %8s" % fmt(L["msgs_per_s"]))
    print("  ack latency p50 / p90 / p99 / max   %s / %s / %s / %s ms"
          % (fmt(L["p50_ms"], "%.2f"), fmt(L["p90_ms"], "%.2f"),
             fmt(L["p99_ms"], "%.2f"), fmt(L["max_ms"], "%.2f")))
    print("  stored                   %8s   (server counted %s acks; dead "
          "jobs %s, duplicates %s, parse failures %s)"
          % (fmt(p["stored"], "%d"), fmt(p["server_acked"], "%d"),
             fmt(p["dead_jobs"], "%d"), fmt(p["duplicates"], "%d"),
             fmt(p["parse_failures"], "%d")))
    print("  end-to-end stored msgs/s %8s   (load start to queue drained: "
          "%s s; drained %s s after the load)"
          % (fmt(p["stored_msgs_per_s"]), fmt(p["end_to_end_s"], "%.2f"),
             fmt(p.get("drain_after_load_s"), "%.2f")))
    print("  queue depth peak         %8s" % fmt(p["queue_peak"], "%d"))
    print("  CPU seconds              server %s, load generator %s "
          "(of %.2f s wall, %d cores)"
          % (fmt(p["server_cpu_s"], "%.2f"), fmt(p["load_cpu_s"], "%.2f"),
             p["load_wall_s"], r["machine"]["cpus"]))
    if "skipped" in f:
        print("  fsyncs per message       n/a   (%s)" % f["skipped"])
    elif f:
        print("  fsyncs per message       %8s   (separate pass under strace, "
              "%d acked: %s; traced msgs/s %s, not a figure)"
              % (fmt(f["per_message"], "%.2f"), f["acked"],
                 ", ".join("%s %d" % kv for kv in sorted(f["calls"].items()))
                 or "no calls", fmt(f["traced_msgs_per_s"])))
    print("  server exit on SIGTERM   %s" % (
        "killed (did not stop in time)" if r["exit"] is None else
        "%d %s" % (r["exit"], "OK" if r["exit"] == 0 else "NOT OK")))
    print()
    print("Target: >= %d msgs/s acknowledged durably, end to end"
          % TARGET)
    print("  acknowledged msgs/s      %8s  %s"
          % (fmt(L["msgs_per_s"]), verdict(L["msgs_per_s"])))
    print("  end-to-end stored msgs/s %8s  %s"
          % (fmt(p["stored_msgs_per_s"]), verdict(p["stored_msgs_per_s"])))
    print("  => %s" % r["verdict"])
    for w in r["warnings"]:
        print("  warning: " + w)


def main():
    ap = argparse.ArgumentParser(
        description="SMTP ingest benchmark against mailroom serve")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mailroom", help="default BUILD/mailroom")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--size", type=int, default=3000)
    # Issue 4's corpus: 60% of the messages answer an earlier one, so the
    # end-to-end figure includes real threading work.
    ap.add_argument("--reply-percent", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--strace-count", type=int, default=1000)
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=int, default=120,
                    help="bound on each load pass")
    ap.add_argument("--drain-timeout-s", type=int, default=300)
    ap.add_argument("--start-timeout-s", type=int, default=30)
    ap.add_argument("--stop-timeout-s", type=int, default=60)
    ap.add_argument("--keep", action="store_true",
                    help="keep the data folder")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    mailroom = args.mailroom or os.path.join(build, "mailroom")

    srv = None
    data = None
    try:
        if not os.access(mailroom, os.X_OK):
            raise CannotRun("%s not built (make build)" % mailroom)
        exe = load_tool(build)
        data = tempfile.mkdtemp(prefix="bench-ingest-", dir=build)
        r = {"machine": machine(), "fs_type": fs_type(data),
             "warmup": args.warmup, "target_msgs_per_s": TARGET,
             "warnings": []}
        if r["fs_type"] in ("tmpfs", "ramfs"):
            r["warnings"].append("the data folder is on %s: fsync is free "
                                 "there, nothing is durable" % r["fs_type"])
        srv = Server(mailroom, data,
                     os.path.join(build, "bench-ingest-serve.log"))
        srv.wait_smtp(args.start_timeout_s)
        if queue_depth(srv.metrics()) is None:
            r["warnings"].append(
                "GET /metrics has no mailroom_queue_ready/leased gauges: "
                "end-to-end figures not measured")

        if args.warmup > 0:
            log("warm-up: %d messages" % args.warmup)
            run_load(exe, srv.smtp, args.warmup, args, args.seed)
            wait_drained(srv, args.drain_timeout_s)
        log("measured pass: %d messages over %d connections"
            % (args.count, args.connections))
        r["measured"] = measured_pass(srv, exe, args, args.seed + 1,
                                      args.count)
        r["load"] = r["measured"].pop("load")
        if args.no_strace:
            r["fsync"] = {"skipped": "--no-strace"}
        else:
            log("fsync pass under strace: %d messages" % args.strace_count)
            r["fsync"] = fsync_pass(srv, exe, args, args.seed + 2, build)
        log("stopping the server (SIGTERM)")
        r["exit"] = srv.stop(args.stop_timeout_s)
        srv = None
    except (CannotRun, subprocess.TimeoutExpired, OSError,
            ValueError) as e:
        log("ingest_bench: cannot run: %s" % e)
        if srv is not None:
            srv.stop(10)
        if data and not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        return 1

    L, p = r["load"], r["measured"]
    if L["acked"] < L["sent"] or L["errors"]:
        r["warnings"].append("not every message was acknowledged: see the "
                             "counts above and bench-ingest-serve.log")
    if not p["drained"]:
        r["warnings"].append("the queue did not drain within %d s"
                             % args.drain_timeout_s)
    if p["stored"] is not None and p["stored"] < L["acked"]:
        r["warnings"].append("%d acknowledged messages are not stored"
                             % (L["acked"] - p["stored"]))
    if r["exit"] != 0:
        r["warnings"].append("the server did not exit 0 on SIGTERM")
    ok = (L["msgs_per_s"] >= TARGET and p["stored_msgs_per_s"] is not None
          and p["stored_msgs_per_s"] >= TARGET and not
          any("tmpfs" in w or "ramfs" in w or "not stored" in w
              for w in r["warnings"]))
    r["verdict"] = "PASS" if ok else "MISS"
    r["data"] = data if args.keep else None
    report(r)
    out = os.path.join(build, "bench-ingest.json")
    with open(out, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    print("\nfigures in %s, server log in %s" % (
        out, os.path.join(build, "bench-ingest-serve.log")))
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
