# SPDX-License-Identifier: Apache-2.0
"""Fixtures for end-to-end tests: a real `mailroom serve` on loopback.

Each test that asks for `server` gets its own data folder and free ports,
so tests never share state. MAILROOM_BIN names the binary (CTest sets it);
by default build/mailroom of this checkout.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("MAILROOM_BIN", os.path.join(ROOT, "build", "mailroom"))
CERTS = os.path.join(ROOT, "tests", "certs")
SHARED = os.environ.get("MR_SHARED", os.path.join(ROOT, "..", "shared"))
WEBHOOK_SECRET = "whsec_e2e_0123456789abcdef"

# Under ASan/UBSan (the sanitizer tree's CTest sets this) every scenario
# runs, but the load tests (thousands of messages, kill -9 loops) only in
# the normal build: sanitized they take minutes and prove nothing more.
load_test = pytest.mark.skipif(
    os.environ.get("MR_E2E_SANITIZER") == "1",
    reason="load test: runs in the normal build, not under the sanitizers")


_GIVEN_PORTS = set()


def free_port():
    """A loopback port nobody listens on, and never one this process gave
    out before: the kernel may hand the same free port to two binds in a
    row, and a server's SMTP and LMTP listeners must differ (CI saw
    `listen.lmtp: same address as listen.smtp`)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise RuntimeError("no free loopback port in 100 tries")


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


CONFIG = """\
hostname: mx.e2e.test
data_dir: {data}
{storage}listen:
  smtp: "127.0.0.1:{smtp}"
  lmtp: "127.0.0.1:{lmtp}"
  http: "127.0.0.1:{http}"
tls:
  cert: {certs}/cert.pem
  key: {certs}/key.pem
limits:
  message_size: {size}
  max_connections_per_ip: {per_ip}
  smtp_idle_timeout: {idle}s
workers:
  count: 2
  backoff_base: 100ms
  max_attempts: 3
webhook:
  secret: "{secret}"
  tenant: acme
  tolerance: 300s
tenants:
  - name: acme
    inboxes:
      - support@acme.test
      - address: "help+{{team}}@acme.test"
        name: help
  - name: globex
    inboxes:
      - "*@globex.test"
"""


class Server:
    """One mailroom serve process with its own folder and ports."""

    def __init__(self, tmp, size="1MB", per_ip=20, idle=30, data=None,
                 blobs=None, inline_max=None):
        self.tmp = tmp
        self.data = data or os.path.join(tmp, "data")
        storage = ""
        if blobs:
            storage += "  blobs: %s\n" % blobs
        if inline_max is not None:
            # 0: every raw message in the blob folder (tests of that path).
            storage += "  inline_max: %s\n" % inline_max
        if storage:
            storage = "storage:\n" + storage
        self.smtp = free_port()
        self.lmtp = free_port()
        self.http = free_port()
        self.config = os.path.join(tmp, "mailroom.yaml")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(data=self.data, storage=storage,
                                  smtp=self.smtp,
                                  lmtp=self.lmtp, http=self.http,
                                  certs=CERTS, size=size, per_ip=per_ip,
                                  idle=idle, secret=WEBHOOK_SECRET))
        self.log = os.path.join(tmp, "serve.log")
        self.proc = None

    def cli(self, *args, stdin=None, check=False):
        """Runs `mailroom ARGS --config ...` -> CompletedProcess."""
        cmd = [BIN, *args, "--config", self.config]
        return subprocess.run(cmd, input=stdin, capture_output=True,
                              timeout=60, check=check)

    def start(self, *flags):
        """Starts `mailroom serve` with the config and any extra flags."""
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", self.config, *flags],
            stdout=self.logf, stderr=self.logf)
        for port in (self.smtp, self.http):
            if not wait_port(port):
                self.stop()
                raise RuntimeError("mailroom serve did not come up:\n" +
                                   open(self.log).read())
        return self

    def kill9(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self):
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        return rc

    def token(self, tenant="acme", role="admin"):
        r = self.cli("token", "create", "--tenant", tenant, "--role", role,
                     check=True)
        return r.stdout.decode().strip()

    def http_call(self, method, path, body=None, token=None, headers=None):
        """-> (status, headers, body bytes); never raises for HTTP errors."""
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.http, path), data=body,
            method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json_call(self, method, path, token=None, body=None, headers=None):
        status, hdrs, data = self.http_call(method, path, body, token,
                                            headers)
        return status, (json.loads(data) if data else None)

    def wait_stored(self, token, count, timeout=20.0):
        """Waits until the tenant has `count` tickets -> the list."""
        end = time.time() + timeout
        tickets = []
        while time.time() < end:
            tickets = self.all_tickets(token)
            if len(tickets) >= count:
                return tickets
            time.sleep(0.1)
        return tickets

    def all_tickets(self, token):
        out, cursor = [], None
        for _ in range(10000):
            path = "/api/v1/tickets?limit=200"
            if cursor:
                path += "&cursor=" + urllib.request.quote(cursor)
            status, page = self.json_call("GET", path, token)
            assert status == 200, page
            out += page["tickets"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="mailroom-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(tmpdir_path):
    s = Server(tmpdir_path).start()
    yield s
    rc = s.stop()
    assert rc in (0, None), "serve exited with %s:\n%s" % (
        rc, open(s.log).read())


def message(subject="Hello", to="support@acme.test",
            frm="Alice <alice@customer.test>", msgid=None, body="Hi there.\n",
            extra=""):
    msgid = msgid or "<%s@customer.test>" % os.urandom(8).hex()
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
            "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n%s"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\n%s" % (frm, to, subject, msgid, extra,
                        body.replace("\n", "\r\n"))).encode()
