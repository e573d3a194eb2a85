# SPDX-License-Identifier: Apache-2.0
"""Checks bench/smtp_load.c against bench/smtp_sink.py on loopback.

The load generator is what the ingest benchmark and the crash test trust
to say which messages were acknowledged, so its counts and its --acked
file are checked here against what the sink recorded, including when the
sink refuses, hangs up between messages, or dies mid-run.

  /usr/bin/python3 -m pytest -q bench/test_smtp_load.py
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "smtp_sink.py")
ID = re.compile(r"^load-(\d+)-(\d+)-(\d+)@bench\.mailroom\.invalid$")


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = str(tmp_path_factory.mktemp("bin") / "smtp_load")
    subprocess.run([cc, "-O2", "-pthread", "-std=c17", "-D_GNU_SOURCE",
                    "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(HERE, "smtp_load.c")], check=True)
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self, tmp, *args, port=0):
        self.record = str(tmp / "recorded")
        self.proc = subprocess.Popen(
            [sys.executable, SINK, "--port", str(port), "--record",
             self.record] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    def ids(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return f.read().split()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def sinks():
    started = []
    yield started
    for s in started:
        s.stop()


def run(load, port, tmp, *args, timeout=60):
    acked = tmp / "acked"
    p = subprocess.run([load, "--host", "127.0.0.1", "--port", str(port),
                        "--acked", str(acked)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["sent"] == (res["acked"] + res["tempfail"] + res["rejected"]
                           + res["unanswered"])
    ids = acked.read_text().split() if acked.exists() else []
    assert len(ids) == res["acked"]
    assert len(set(ids)) == len(ids)
    assert all(ID.match(i) for i in ids)
    return res, ids


def test_all_acknowledged(load, tmp_path, sinks):
    sinks.append(Sink(tmp_path))
    res, ids = run(load, sinks[0].port, tmp_path, "--count", 600,
                   "--connections", 4, "--seed", 42)
    assert (res["sent"], res["acked"], res["errors"]) == (600, 600, 0)
    assert res["connects"] == 4
    assert sorted(ids) == sorted(sinks[0].ids())
    assert {ID.match(i).group(1) for i in ids} == {"42"}
    assert {ID.match(i).group(2) for i in ids} == {"0", "1", "2", "3"}
    assert 0 <= res["p50_ms"] <= res["p90_ms"] <= res["p99_ms"] <= \
        res["max_ms"]
    # about --size bytes a message, commands included
    assert 2500 < res["bytes_sent"] / 600 < 4500


def test_same_seed_same_ids(load, tmp_path, sinks):
    sinks.append(Sink(tmp_path))
    _, a = run(load, sinks[0].port, tmp_path, "--count", 50,
               "--connections", 1, "--seed", 7)
    (tmp_path / "acked").unlink()
    _, b = run(load, sinks[0].port, tmp_path, "--count", 50,
               "--connections", 1, "--seed", 7)
    assert a == b


def test_tempfail_and_reject(load, tmp_path, sinks):
    sinks.append(Sink(tmp_path, "--fail-every", "5"))
    res, ids = run(load, sinks[0].port, tmp_path, "--count", 200)
    assert (res["acked"], res["tempfail"], res["errors"]) == (160, 40, 0)
    assert sorted(ids) == sorted(sinks[0].ids())

    sinks.append(Sink(tmp_path, "--reject", "nobody@example.com",
                      "--no-pipelining"))
    (tmp_path / "acked").unlink()
    res, ids = run(load, sinks[1].port, tmp_path, "--count", 30,
                   "--rcpt", "nobody@example.com")
    assert (res["rejected"], res["acked"], res["errors"]) == (30, 0, 0)
    # the RSET after each refusal keeps the connection usable
    assert res["connects"] == 8


@pytest.mark.parametrize("how", ["421", "silent"])
def test_server_hangs_up_between_messages(load, tmp_path, sinks, how):
    # A message that met the hang-up before any of it was sent goes again
    # on a new connection: no loss, no error.
    sinks.append(Sink(tmp_path, "--close-after", "3",
                      *(["--silent-close"] if how == "silent" else [])))
    res, ids = run(load, sinks[0].port, tmp_path, "--count", 300)
    assert (res["acked"], res["unanswered"], res["errors"]) == (300, 0, 0)
    assert res["connects"] >= 100
    assert sorted(ids) == sorted(sinks[0].ids())


def test_lmtp(load, tmp_path, sinks):
    sinks.append(Sink(tmp_path, "--lmtp", "--fail-every", "4"))
    res, ids = run(load, sinks[0].port, tmp_path, "--count", 100, "--lmtp",
                   "--rcpt", "a@example.com", "--rcpt", "b@example.com")
    assert (res["acked"], res["tempfail"], res["errors"]) == (75, 25, 0)


def test_server_dies_and_comes_back(load, tmp_path, sinks):
    port = free_port()
    sinks.append(Sink(tmp_path, "--die-after", "150", port=port))
    p = subprocess.Popen([load, "--host", "127.0.0.1", "--port", str(port),
                          "--count", "1000", "--acked",
                          str(tmp_path / "acked"), "--timeout-s", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while sinks[0].proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sinks[0].proc.returncode == 1  # it died at message 150
    time.sleep(0.5)
    sinks.append(Sink(tmp_path, port=port))
    out, _ = p.communicate(timeout=60)
    res = json.loads(out)
    ids = (tmp_path / "acked").read_text().split()
    assert res["sent"] == 1000 and not res["timed_out"]
    assert res["errors"] > 0 and res["connects"] > 8
    assert res["acked"] == len(ids) >= 990
    # everything acknowledged was recorded by a sink before its 250
    assert set(ids) <= set(sinks[1].ids())


def test_nobody_listening_is_bounded(load, tmp_path):
    t0 = time.monotonic()
    res, ids = run(load, free_port(), tmp_path, "--count", 10,
                   "--timeout-s", "1")
    assert time.monotonic() - t0 < 5
    assert res["timed_out"] and res["sent"] == 0 and res["errors"] > 0
    assert res["msgs_per_s"] == 0 and res["p50_ms"] is None


def test_bad_usage(load):
    for args in ([], ["--host", "h"], ["--host", "h", "--port", "1",
                                        "--count", "x"],
                 ["--host", "h", "--port", "1", "--rcpt", "<a>"]):
        p = subprocess.run([load] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        assert p.returncode == 2 and p.stdout == b""
