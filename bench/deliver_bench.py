#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The webhook delivery benchmark: `make bench-deliver`.

Starts bench/webhook_sink.py (an asyncio loopback receiver in its own
process) and `mailroom serve` with a configuration whose one tenant
subscribes the sink to every event type, data in a new folder under
BUILD. Then, all on loopback and bounded in count and time:

  1. idle latency: --probes messages (default 200), one at a time over
     SMTP (Python's smtplib), each after the previous one's webhook came
     back and a pause; the time from the 250 that ends DATA to the first
     webhook carrying the message's Message-ID at the sink. Both times are
     CLOCK_MONOTONIC, one clock for every process of the machine.
  2. latency under load: the ingest benchmark's load generator
     (bench/smtp_load.c, --count messages over --connections) runs while
     probes go out every --pause-ms on one more connection, not waiting
     for their webhooks; the same latency, plus the deliveries per second
     the sink saw from the start of the load to the last delivery.
  3. delivery rate: mailroom stopped, every delivery of passes 1-2 marked
     pending and due again in the database (the same webhook-ids), mailroom
     started: deliveries per second from the first to the last arrival of
     that backlog, with nothing else to do. The sink's CPU time is
     reported: near one CPU second per second, the sink (Python) is the
     bottleneck, not mailroom.

Writes BUILD/bench-deliver.json and the server's log to
BUILD/bench-deliver-serve.log. Exit status 0 whatever the figures (a
benchmark, not a test); 1 when it could not run.

Usage: deliver_bench.py [--build DIR] [--probes N] [--count N]
                        [--connections N] [--concurrency N] [--keep]
"""
import argparse
import json
import os
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from ingest_bench import (CannotRun, cpu_seconds, free_port,  # noqa: E402
                          fs_type, load_tool, log, machine, run_load)

TARGET_MEDIAN_MS = 20.0  # idle, 250 -> webhook (issue 7)
TARGET_RATE = 2000.0     # deliveries per second


class Sink:
    """bench/webhook_sink.py in a process; a thread reads its lines."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "webhook_sink.py"), "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != b"port":
            raise CannotRun("the webhook sink did not start")
        self.port = int(first[1])
        self.cv = threading.Condition()
        self.first = {}    # message_id -> first arrival
        self.times = []    # every arrival
        self.ids = []      # every webhook-id, in order
        # message_id -> ms from its event's created_at (the worker's
        # transaction) to the webhook: the dispatcher's part
        self.after_commit = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) != 5:
                continue
            t, wid, mid = float(parts[0]), parts[1], parts[2]
            with self.cv:
                self.times.append(t)
                self.ids.append(wid)
                if mid != b"-" and mid not in self.first:
                    self.first[mid] = t
                    if parts[4] != b"-":
                        self.after_commit[mid] = (float(parts[3]) -
                                                  float(parts[4]))
                self.cv.notify_all()

    def wait_for(self, mid, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while mid not in self.first:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)
            return self.first[mid]

    def count(self):
        with self.cv:
            return len(self.times)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


CONFIG = """\
data_dir: {data}
listen:
  smtp: "127.0.0.1:{smtp}"
  lmtp: "127.0.0.1:{lmtp}"
  http: "127.0.0.1:{http}"
webhooks_allow_private: true
webhook_concurrency: {conc}
tenants:
  - name: bench
    inboxes:
      - "*@example.com"
    webhooks:
      - url: http://127.0.0.1:{sink}/hook
        secrets: ["whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA=="]
"""


class Server:
    def __init__(self, mailroom, config, log_path):
        self.argv = [mailroom, "serve", "--config", config]
        self.log_path = log_path
        self.logf = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)

    def wait_smtp(self, port, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise CannotRun("mailroom serve exited %d; see %s"
                                % (self.proc.returncode, self.log_path))
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=2) as s:
                    s.noop()
                    return
            except OSError:
                time.sleep(0.1)
        raise CannotRun("no SMTP on port %d" % port)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.logf.close()
                return None
        self.logf.close()
        return self.proc.returncode


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def probe(smtp, sink, tag, i, timeout):
    """One message; -> ms from its 250 to its first webhook, or None."""
    mid = "probe-%s-%d-%s@bench.test" % (tag, i, os.urandom(4).hex())
    msg = ("From: Probe <probe%d@customer.test>\r\nTo: support@example.com"
           "\r\nSubject: probe %s %d\r\nMessage-ID: <%s>\r\n"
           "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nprobe\r\n"
           % (i, tag, i, mid))
    smtp.sendmail("probe%d@customer.test" % i, ["support@example.com"], msg)
    t250 = time.monotonic()
    t = sink.wait_for(mid.encode(), timeout)
    return None if t is None else (t - t250) * 1000.0


def commit_part(sink, tag):
    """For the probes of tag: ms from the event's created_at to the
    webhook (wall clocks; ms resolution)."""
    pre = ("probe-%s-" % tag).encode()
    with sink.cv:
        return [v for k, v in sink.after_commit.items() if k.startswith(pre)]


def probes(port, sink, tag, n, pause, timeout=30):
    """n probes, each after the previous one's webhook -> latencies in ms,
    misses."""
    lat, missed = [], 0
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("bench.test")
        for i in range(n):
            ms = probe(smtp, sink, tag, i, timeout)
            if ms is None:
                missed += 1
            else:
                lat.append(ms)
            time.sleep(pause)
    return lat, missed


def open_probes(port, sink, tag, pause, until, timeout=60):
    """Probes every `pause` s, not waiting for their webhooks, until
    until() -> latencies in ms, misses (collected once all came or
    timeout passed)."""
    sent = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("bench.test")
        i = 0
        while not until() and i < 100000:
            mid = "probe-%s-%d-%s@bench.test" % (tag, i, os.urandom(4).hex())
            msg = ("From: Probe <probe%d@customer.test>\r\n"
                   "To: support@example.com\r\nSubject: probe %s %d\r\n"
                   "Message-ID: <%s>\r\n"
                   "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nprobe\r\n"
                   % (i, tag, i, mid))
            smtp.sendmail("probe%d@customer.test" % i,
                          ["support@example.com"], msg)
            sent.append((mid.encode(), time.monotonic()))
            i += 1
            time.sleep(pause)
    lat, missed = [], 0
    end = time.monotonic() + timeout
    for mid, t250 in sent:
        t = sink.wait_for(mid, max(0.0, end - time.monotonic()))
        if t is None:
            missed += 1
        else:
            lat.append((t - t250) * 1000.0)
    return lat, missed


def summary(lat, missed):
    return {"n": len(lat), "missed": missed,
            "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90),
            "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else None}


def settle(sink, quiet=1.0, timeout=120):
    """Until the sink saw nothing new for `quiet` seconds."""
    end = time.monotonic() + timeout
    last, since = sink.count(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        n = sink.count()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def main():
    ap = argparse.ArgumentParser(description="webhook delivery benchmark")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mailroom")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--pause-ms", type=int, default=20)
    ap.add_argument("--count", type=int, default=5000,
                    help="messages of the load in pass 2")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--reply-percent", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=16,
                    help="webhook_concurrency")
    ap.add_argument("--timeout-s", type=int, default=120)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    mailroom = args.mailroom or os.path.join(build, "mailroom")
    serve_log = os.path.join(build, "bench-deliver-serve.log")
    if os.path.exists(serve_log):
        os.unlink(serve_log)
    sink = srv = data = None
    r = {"machine": machine(), "concurrency": args.concurrency}
    try:
        if not os.access(mailroom, os.X_OK):
            raise CannotRun("%s not built (make build)" % mailroom)
        exe = load_tool(build)
        data = tempfile.mkdtemp(prefix="bench-deliver-", dir=build)
        r["fs_type"] = fs_type(data)
        sink = Sink()
        smtp_port = free_port()
        config = os.path.join(data, "mailroom.yaml")
        with open(config, "w") as f:
            f.write(CONFIG.format(data=os.path.join(data, "data"),
                                  smtp=smtp_port, lmtp=free_port(),
                                  http=free_port(), sink=sink.port,
                                  conc=args.concurrency))
        srv = Server(mailroom, config, serve_log)
        srv.wait_smtp(smtp_port)
        time.sleep(0.5)  # the dispatcher's first scan: the subscription
        probes(smtp_port, sink, "warm", 20, 0.01)

        log("pass 1: %d probes at idle" % args.probes)
        lat, missed = probes(smtp_port, sink, "idle", args.probes,
                             args.pause_ms / 1000.0)
        r["idle"] = summary(lat, missed)
        r["idle"]["after_commit"] = summary(commit_part(sink, "idle"), 0)

        log("pass 2: probes while %d messages load over %d connections"
            % (args.count, args.connections))
        done = threading.Event()
        load = {}

        def run():
            try:
                load["summary"], _ = run_load(exe, smtp_port, args.count,
                                              args, int(time.time()))
            except CannotRun as e:
                load["error"] = str(e)
            load["end"] = time.monotonic()
            done.set()
        n0, t0 = sink.count(), time.monotonic()
        threading.Thread(target=run, daemon=True).start()
        lat, missed = open_probes(smtp_port, sink, "load",
                                  args.pause_ms / 1000.0, done.is_set)
        done.wait(args.timeout_s + 60)
        if "error" in load:
            raise CannotRun(load["error"])
        settle(sink)
        with sink.cv:
            ts = sink.times[n0:]
        r["load"] = summary(lat, missed)
        r["load"]["after_commit"] = summary(commit_part(sink, "load"), 0)
        r["load"]["ingest"] = load["summary"]
        r["load"]["deliveries"] = len(ts)
        r["load"]["load_wall_s"] = round(load["end"] - t0, 3)
        r["load"]["deliveries_per_s"] = (
            round(len(ts) / (ts[-1] - t0), 1) if ts else None)
        r["load"]["last_delivery_after_load_s"] = (
            round(ts[-1] - load["end"], 3) if ts else None)

        log("pass 3: every delivery again, as a backlog")
        r["exit_1"] = srv.stop()
        db = sqlite3.connect(os.path.join(data, "data", "mailroom.db"))
        with db:
            backlog = db.execute(
                "UPDATE webhook_deliveries SET state = 'pending',"
                " next_attempt_at = 0 WHERE state = 'delivered'").rowcount
        db.close()
        n0 = sink.count()
        cpu0 = sink.cpu()
        srv = Server(mailroom, config, serve_log)
        srv.wait_smtp(smtp_port)
        end = time.monotonic() + args.timeout_s
        while sink.count() - n0 < backlog and time.monotonic() < end:
            time.sleep(0.05)
        with sink.cv:
            ts = sink.times[n0:]
        cpu1 = sink.cpu()
        wall = ts[-1] - ts[0] if len(ts) > 1 else None
        r["drain"] = {
            "backlog": backlog, "delivered": len(ts),
            "seconds": None if wall is None else round(wall, 3),
            "deliveries_per_s": round((len(ts) - 1) / wall, 1)
            if wall else None,
            "sink_cpu_s": None if cpu0 is None or cpu1 is None
            else round(cpu1 - cpu0, 3)}
        r["exit_2"] = srv.stop()
        srv = None
    except (CannotRun, OSError, smtplib.SMTPException,
            subprocess.TimeoutExpired) as e:
        log("deliver_bench: cannot run: %s" % e)
        if srv:
            srv.stop(10)
        if sink:
            sink.stop()
        if data and not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        return 1
    sink.stop()
    i, ld, dr = r["idle"], r["load"], r["drain"]
    ok_lat = i["p50_ms"] is not None and i["p50_ms"] < TARGET_MEDIAN_MS
    ok_rate = dr["deliveries_per_s"] is not None and \
        dr["deliveries_per_s"] >= TARGET_RATE
    r["verdict"] = "PASS" if ok_lat and ok_rate else "MISS"
    print()
    print("Webhook delivery: mailroom serve, one subscription to a loopback "
          "asyncio sink, webhook_concurrency %d; data on %s; %d CPUs (%s)"
          % (args.concurrency, r["fs_type"], r["machine"]["cpus"],
             r["machine"]["cpu"]))
    print()
    print("  SMTP 250 -> webhook, idle        p50 %s  p90 %s  p99 %s  max %s"
          " ms  (%d probes, %d missed)"
          % (fmt(i["p50_ms"], "%.2f"), fmt(i["p90_ms"], "%.2f"),
             fmt(i["p99_ms"], "%.2f"), fmt(i["max_ms"], "%.2f"), i["n"],
             i["missed"]))
    print("  SMTP 250 -> webhook, under load  p50 %s  p90 %s  p99 %s  max %s"
          " ms  (%d probes, %d missed)"
          % (fmt(ld["p50_ms"], "%.2f"), fmt(ld["p90_ms"], "%.2f"),
             fmt(ld["p99_ms"], "%.2f"), fmt(ld["max_ms"], "%.2f"), ld["n"],
             ld["missed"]))
    for name, x in (("idle", i), ("under load", ld)):
        a = x["after_commit"]
        print("    %s, of which from the event's commit: p50 %s  p99 %s ms"
              % (name, fmt(a["p50_ms"], "%.1f"), fmt(a["p99_ms"], "%.1f")))
    print("    load: %d messages acked at %s msgs/s; %d deliveries, %s/s "
          "while it ran; the last %s s after it"
          % (ld["ingest"]["acked"], fmt(ld["ingest"]["msgs_per_s"]),
             ld["deliveries"], fmt(ld["deliveries_per_s"]),
             fmt(ld["last_delivery_after_load_s"], "%.2f")))
    print("  backlog drain                    %s deliveries/s  (%d of %d in "
          "%s s; sink CPU %s s)"
          % (fmt(dr["deliveries_per_s"]), dr["delivered"], dr["backlog"],
             fmt(dr["seconds"], "%.2f"), fmt(dr["sink_cpu_s"], "%.2f")))
    print()
    print("Targets: idle median < %d ms: %s; >= %d deliveries/s: %s  => %s"
          % (TARGET_MEDIAN_MS, "PASS" if ok_lat else "MISS", TARGET_RATE,
             "PASS" if ok_rate else "MISS", r["verdict"]))
    out = os.path.join(build, "bench-deliver.json")
    with open(out, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    print("\nfigures in %s, server log in %s" % (out, serve_log))
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
