# SPDX-License-Identifier: Apache-2.0
"""SIGTERM while every peer hangs: `mailroom serve` still exits at once.

One mail starts work for every background thread at the same time: the
webhook dispatcher posts to a receiver that reads the request and never
answers, the notify sender posts to a Slack integration on that same
receiver, the mail sender's acknowledgement goes to an SMTP relay that
accepts the connection and never greets, and the scanner streams the
attachment to a clamd that reads it all and never replies; an SMTP
client says EHLO and goes quiet besides. Every timeout
is left at its default (10 s to 30 s per step), so only the stop paths
can make the exit prompt. With all four in flight, kill -TERM must end
the process within a few seconds, with status 0, and the attachment must
stay pending (an aborted scan is no verdict, and no attempt counted).
"""
import os
import signal
import smtplib
import socket
import sqlite3
import threading
import time

from conftest import Server

EXIT_WITHIN_S = 5.0


class Silent:
    """A listener that accepts, reads what it is sent, and never answers.
    first[i] holds the first bytes of connection i (an HTTP request line,
    clamd's command), so a test can tell who connected."""

    def __init__(self, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix_path)
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.base = "http://127.0.0.1:%d" % self.port
        self.sock.listen(16)
        self.lock = threading.Lock()
        self.first = []
        self.conns = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                self.first.append(b"")
                i = len(self.first) - 1
            threading.Thread(target=self._drain, args=(c, i),
                             daemon=True).start()

    def _drain(self, c, i):
        while True:
            try:
                b = c.recv(65536)
            except OSError:
                return
            if not b:
                return
            with self.lock:
                if len(self.first[i]) < 256:
                    self.first[i] += b[:256]

    def saw(self, needle):
        with self.lock:
            return any(needle in f for f in self.first)

    def close(self):
        self.stopping = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


RULES = """\
auto_ack_window: 1h
templates:
  received:
    subject: "Received: {{subject}}"
    text: "We have your message as ticket #{{ticket.number}}."
tenants:
  acme:
    - name: Outage
      if: {subject: {contains: outage}}
      then:
        notify: [oncall-slack]
        auto_acknowledge: {template: received}
"""


def wait(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_with_every_peer_hanging_exits_promptly(tmpdir_path):
    http = Silent()
    relay = Silent()
    clamd_path = os.path.join(tmpdir_path, "clamd.sock")
    clamd = Silent(unix_path=clamd_path)
    s = Server(tmpdir_path)
    idle = None
    rules = os.path.join(tmpdir_path, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    text = open(s.config).read()
    block = ("    webhooks:\n"
             "      - url: %s/hook\n"
             "        secrets: [\"whsec_c2h1dGRvd24tdGVzdA==\"]\n"
             "    integrations:\n"
             "      - {name: oncall-slack, kind: slack,"
             " url: %s/services/T0/B0/XYZ}\n" % (http.base, http.base))
    text = text.replace("  - name: acme\n", "  - name: acme\n" + block, 1)
    text = "webhooks_allow_private: true\n" + text
    text += ("rules: %s\n"
             "outbound:\n"
             "  smtp: \"127.0.0.1:%d\"\n"
             "  from: \"Acme Support <support@acme.test>\"\n"
             "clamd:\n"
             "  socket: %s\n" % (rules, relay.port, clamd_path))
    open(s.config, "w").write(text)
    s.start()
    try:
        # A new ticket (acknowledged), an outage (notified), an
        # attachment (scanned), and every event to the webhook.
        mime = (b"From: Alice <alice@customer.test>\r\n"
                b"To: support@acme.test\r\n"
                b"Subject: outage in the west\r\n"
                b"Message-ID: <shutdown-1@customer.test>\r\n"
                b"MIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
                b"--b1\r\nContent-Type: text/plain\r\n\r\nAll down.\r\n"
                b"--b1\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment; filename=log.bin\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" +
                (b"QUJDREVGR0g=\r\n" * 2000) + b"--b1--\r\n")
        with smtplib.SMTP("127.0.0.1", s.smtp, timeout=20) as c:
            c.sendmail("alice@customer.test", ["support@acme.test"], mime)

        log = lambda: open(s.log).read()  # noqa: E731
        assert wait(lambda: http.saw(b"POST /hook")), log()
        assert wait(lambda: http.saw(b"POST /services/T0/B0/XYZ")), log()
        assert wait(lambda: len(relay.first) >= 1), log()
        assert wait(lambda: clamd.saw(b"zINSTREAM")), log()
        # And an SMTP client that said EHLO and went quiet.
        idle = smtplib.SMTP("127.0.0.1", s.smtp, timeout=20)
        idle.ehlo("idle.customer.test")
        time.sleep(0.3)  # every thread is now waiting on its peer

        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(timeout=60)
        finally:
            took = time.monotonic() - t0
        s.proc = None
        s.logf.close()
        print("SIGTERM to exit: %.2f s" % took)
        assert rc == 0, log()
        assert took < EXIT_WITHIN_S, "exit took %.1f s:\n%s" % (took, log())

        db = sqlite3.connect("file:%s?mode=ro" %
                             os.path.join(s.data, "mailroom.db"), uri=True)
        try:
            scans = db.execute("SELECT scan, scan_attempts FROM attachments"
                               ).fetchall()
        finally:
            db.close()
        assert scans == [("pending", 0)], scans
        # The acknowledgement was cut short by the stop, not by a timeout.
        assert "stopped (shutting down)" in log(), log()
    finally:
        if idle:
            idle.sock.close()
        if s.proc:
            s.stop()
        http.close()
        relay.close()
        clamd.close()
