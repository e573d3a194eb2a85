# SPDX-License-Identifier: Apache-2.0
"""What an operator sees and fixes of the outbound queues (docs/api.md):
an acknowledgement the relay refused (550) is listed as failed by the API
and the CLI, retried once the relay accepts, and sent; a notification the
receiver refused (401) is dead, redriven once the receiver is fixed, and
sent; neither can be put back while it is not at its dead end (409, exit
65), another tenant sees none of it, and /metrics counts every outcome
and shows the queues' depth."""
import http.server
import json
import os
import re
import socket
import threading
import time

from conftest import Server, message

CT = {"Content-Type": "message/rfc822"}


class Relay:
    """A loopback SMTP relay that refuses every recipient with 550 until
    `accept` is set, then takes the message: messages is a list of
    (rcpt, bytes)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accept = False
        self.messages = []
        self.refused = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 relay.test ESMTP\r\n")
        rcpt = None
        try:
            for line in f:
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    conn.sendall(b"250-relay.test\r\n250 8BITMIME\r\n")
                elif verb == "RCPT":
                    if not self.accept:
                        self.refused += 1
                        conn.sendall(b"550 5.1.1 mailbox unavailable\r\n")
                        continue
                    rcpt = cmd[cmd.index("<") + 1:cmd.rindex(">")]
                    conn.sendall(b"250 ok\r\n")
                elif verb == "DATA":
                    conn.sendall(b"354 go\r\n")
                    data = []
                    for dl in f:
                        if dl == b".\r\n":
                            break
                        data.append(dl)
                    self.messages.append((rcpt, b"".join(data)))
                    conn.sendall(b"250 queued\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")
        finally:
            conn.close()

    def close(self):
        self.sock.close()


class Slack:
    """A loopback Slack incoming webhook answering 401 invalid_token until
    `fixed` is set, then 200 ok."""

    def __init__(self):
        self.hits = 0
        self.fixed = False
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rcv.hits += 1
                code, out = (200, b"ok") if rcv.fixed else \
                    (401, b"invalid_token")
                self.send_response(code)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/services/T0/B0/XYZ" % \
            self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def start(tmp, rules, relay=None, slack=None):
    s = Server(tmp)
    s.rules = os.path.join(tmp, "rules.yaml")
    with open(s.rules, "w") as f:
        f.write(rules)
    text = open(s.config).read()
    if slack:
        text = text.replace(
            "  - name: acme\n",
            "  - name: acme\n    integrations:\n"
            "      - {name: chat, kind: slack, url: %s}\n" % slack.url, 1)
        text = ("webhooks_allow_private: true\nwebhook_retry_scale: 0.001\n"
                + text)
    text += "rules: %s\n" % s.rules
    if relay:
        text += ("outbound:\n"
                 "  smtp: \"127.0.0.1:%d\"\n"
                 "  helo: mailroom.test\n"
                 "  from: \"Acme Support <support@acme.test>\"\n"
                 "  timeout: 5s\n"
                 "  backoff_base: 200ms\n" % relay.port)
    open(s.config, "w").write(text)
    return s.start()


def post(s, subject):
    st, _, out = s.http_call(
        "POST", "/api/v1/messages",
        message(subject=subject, frm="Alice <alice@customer.test>"),
        s.token(role="ingest"), CT)
    assert st == 202, out


def wait(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return None


def metrics(s):
    """/metrics -> {'name{labels}': value}."""
    st, hdrs, body = s.http_call("GET", "/metrics")
    assert st == 200
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def listing(s, tok, path):
    st, doc = s.json_call("GET", path, tok)
    assert st == 200, doc
    return doc


def problem(s, method, path, tok, status):
    st, hdrs, body = s.http_call(method, path, b"" if method == "POST"
                                 else None, tok)
    assert st == status, body
    assert hdrs["Content-Type"] == "application/problem+json"
    doc = json.loads(body)
    assert doc["status"] == status
    return doc


ACK_RULES = """\
auto_ack_window: 1h
tenants:
  acme:
    - name: Acknowledge
      if: {new_ticket: true}
      then:
        auto_acknowledge: {template: plain, text: "Got it: {{subject}}"}
"""


def test_failed_acknowledgement_is_listed_retried_and_sent(tmpdir_path):
    relay = Relay()
    s = start(tmpdir_path, ACK_RULES, relay=relay)
    try:
        admin = s.token()
        post(s, "Printer on fire")
        failed = wait(lambda: listing(
            s, admin, "/api/v1/outbound-mail?state=failed")["outbound_mail"])
        assert failed, open(s.log).read()
        assert len(failed) == 1 and relay.refused == 1
        row = failed[0]
        assert row["rcpt_to"] == "alice@customer.test"
        assert row["state"] == "failed" and row["attempts"] == 1
        assert row["next_attempt_at"] is None
        assert "550" in row["last_error"], row
        assert row["ticket_id"] > 0 and row["message_id"]
        assert listing(s, admin, "/api/v1/outbound-mail?state=pending") == \
            {"outbound_mail": [], "next_after": None}

        m = metrics(s)
        assert m['mailroom_outbound_mail_total{outcome="failed"}'] == 1
        assert m['mailroom_outbound_mail_total{outcome="sent"}'] == 0
        assert m["mailroom_outbound_mail_failed"] == 1
        assert m["mailroom_outbound_mail_pending"] == 0

        # The CLI lists the same row.
        r = s.cli("outbound", "list", "--state", "failed", "--tenant", "acme")
        assert r.returncode == 0, r.stderr
        line = [l for l in r.stdout.decode().splitlines()
                if l.startswith(str(row["id"]) + " ")]
        assert line and "failed" in line[0] and "550" in line[0], r.stdout

        # Bad queries, another tenant, an agent: nothing leaks or changes.
        problem(s, "GET", "/api/v1/outbound-mail?state=dead", admin, 400)
        problem(s, "GET", "/api/v1/outbound-mail?limit=0", admin, 400)
        problem(s, "GET", "/api/v1/outbound-mail?after=x", admin, 400)
        other = s.token(tenant="globex")
        assert listing(s, other, "/api/v1/outbound-mail")["outbound_mail"] \
            == []
        problem(s, "POST", "/api/v1/outbound-mail/%d/retry" % row["id"],
                other, 404)
        problem(s, "POST", "/api/v1/outbound-mail/999999/retry", admin, 404)
        st, _, _ = s.http_call("GET", "/api/v1/outbound-mail", None,
                               s.token(role="agent"))
        assert st == 403

        # The relay is fixed; the operator retries; the mail goes out.
        relay.accept = True
        st, doc = s.json_call("POST", "/api/v1/outbound-mail/%d/retry"
                              % row["id"], admin, b"")
        assert st == 202, doc
        assert doc["id"] == row["id"] and doc["attempts"] == 0
        assert doc["state"] in ("pending", "sent")
        assert wait(lambda: relay.messages), open(s.log).read()
        rcpt, raw = relay.messages[0]
        assert rcpt == "alice@customer.test"
        assert b"Got it: Printer on fire" in raw
        sent = wait(lambda: listing(
            s, admin, "/api/v1/outbound-mail?state=sent")["outbound_mail"])
        assert [x["id"] for x in sent] == [row["id"]]
        assert sent[0]["attempts"] == 1

        # Sent: retrying again would mail her twice.
        doc = problem(s, "POST", "/api/v1/outbound-mail/%d/retry" % row["id"],
                      admin, 409)
        assert "only a failed one" in doc["detail"]
        r = s.cli("outbound", "retry", str(row["id"]))
        assert r.returncode == 65, r.stderr
        r = s.cli("outbound", "list", "--state", "bogus")
        assert r.returncode == 64

        m = metrics(s)
        assert m['mailroom_outbound_mail_total{outcome="sent"}'] == 1
        assert m['mailroom_outbound_mail_total{outcome="failed"}'] == 1
        assert m["mailroom_outbound_mail_failed"] == 0
        assert len(relay.messages) == 1
    finally:
        rc = s.stop()
        relay.close()
    assert rc in (0, None), open(s.log).read()


NOTIFY_RULES = """\
tenants:
  acme:
    - name: Outage
      if: {subject: {contains: outage}}
      then:
        notify: [chat]
"""


def test_dead_notification_is_redriven_after_the_fix(tmpdir_path):
    slack = Slack()
    s = start(tmpdir_path, NOTIFY_RULES, slack=slack)
    try:
        admin = s.token()
        post(s, "Total outage")
        dead = wait(lambda: listing(
            s, admin, "/api/v1/notifications?state=dead")["notifications"])
        assert dead, open(s.log).read()
        assert len(dead) == 1 and slack.hits == 1
        n = dead[0]
        assert n["integration"] == "chat" and n["kind"] == "slack"
        assert n["last_error"] == "HTTP 401: invalid_token"
        assert n["attempts"] == 1 and n["next_attempt_at"] is None
        assert n["ticket_id"] > 0 and n["message"] > 0

        m = metrics(s)
        assert m['mailroom_notifications_total{kind="slack",outcome="dead"}'] \
            == 1
        assert m['mailroom_notifications_total{kind="slack",outcome="sent"}'] \
            == 0
        assert m["mailroom_notifications_dead"] == 1
        assert m["mailroom_notifications_pending"] == 0

        r = s.cli("notifications", "list", "--state", "dead")
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        assert "chat" in out and "HTTP 401: invalid_token" in out, out

        other = s.token(tenant="globex")
        assert listing(s, other, "/api/v1/notifications")["notifications"] \
            == []
        problem(s, "POST", "/api/v1/notifications/%d/redrive" % n["id"],
                other, 404)
        problem(s, "GET", "/api/v1/notifications?state=failed", admin, 400)

        # The receiver is fixed (a new token); the operator redrives.
        slack.fixed = True
        st, doc = s.json_call("POST", "/api/v1/notifications/%d/redrive"
                              % n["id"], admin, b"")
        assert st == 202, doc
        assert doc["id"] == n["id"] and doc["attempts"] == 0
        sent = wait(lambda: listing(
            s, admin, "/api/v1/notifications?state=sent")["notifications"])
        assert sent and sent[0]["id"] == n["id"], open(s.log).read()
        assert sent[0]["last_error"] is None and slack.hits == 2

        doc = problem(s, "POST", "/api/v1/notifications/%d/redrive"
                      % n["id"], admin, 409)
        assert "only a dead one" in doc["detail"]
        r = s.cli("notifications", "redrive", str(n["id"]))
        assert r.returncode == 65, r.stderr
        r = s.cli("notifications", "redrive", "999999")
        assert r.returncode == 65

        m = metrics(s)
        assert m['mailroom_notifications_total{kind="slack",outcome="sent"}'] \
            == 1
        assert m["mailroom_notifications_dead"] == 0
        assert slack.hits == 2
    finally:
        rc = s.stop()
        slack.close()
    assert rc in (0, None), open(s.log).read()
