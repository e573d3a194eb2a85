# SPDX-License-Identifier: Apache-2.0
"""Outbound webhooks (issue 7): subscriptions from the configuration,
signed POSTs (Standard Webhooks + X-Email-Signature), retries with the same
webhook-id, 410 disables, event-type filters. docs/webhooks.md."""
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time

from conftest import Server, message

CT = {"Content-Type": "message/rfc822"}
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OLD = "old-secret-0123456789"


class Receiver:
    """A loopback HTTP receiver answering from a script of statuses."""

    def __init__(self, script=None):
        self.script = list(script or [])
        self.hits = []
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                rcv.hits.append((dict(self.headers.items()), body))
                code = rcv.script.pop(0) if rcv.script else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def std_sig(secret, msg_id, ts, body):
    key = (base64.b64decode(secret[6:]) if secret.startswith("whsec_")
           else secret.encode())
    mac = hmac.new(key, b"%s.%s.%s" % (msg_id.encode(), ts.encode(), body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def start(tmp, subs):
    s = Server(tmp)
    text = open(s.config).read()
    block = "    webhooks:\n"
    for url, events, secrets in subs:
        block += "      - url: %s\n        secrets: [%s]\n" % (
            url, ", ".join('"%s"' % x for x in secrets))
        if events:
            block += "        events: [%s]\n" % ", ".join(events)
    text = text.replace("  - name: acme\n", "  - name: acme\n" + block, 1)
    text = ("webhooks_allow_private: true\nwebhook_retry_scale: 0.001\n" +
            text)
    open(s.config, "w").write(text)
    return s.start()


def send(server, subject="hook"):
    """One message on a new ticket (a subject of its own)."""
    ingest = server.token(role="ingest")
    for i in range(1):
        st, _, body = server.http_call(
            "POST", "/api/v1/messages",
            message(subject="%s %d" % (subject, i),
                    frm="%s <%s@customer.test>" % (subject, subject)),
            ingest, CT)
        assert st == 202, body


def wait(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_signed_delivery_matches_events_api(tmpdir_path):
    rcv = Receiver()
    s = start(tmpdir_path, [(rcv.url, None, [SECRET, OLD])])
    try:
        send(s)
        reader = s.token(role="read")
        assert wait(lambda: len(rcv.hits) >= 3), rcv.hits
        st, page = s.json_call("GET", "/api/v1/events?after=0&limit=100",
                               reader)
        assert st == 200
        by_id = {e["id"]: e for e in page["events"]}
        for hdrs, body in rcv.hits:
            h = {k.lower(): v for k, v in hdrs.items()}
            mid, ts = h["webhook-id"], h["webhook-timestamp"]
            assert abs(int(ts) - time.time()) < 60
            sigs = h["webhook-signature"].split(" ")
            assert sigs == [std_sig(SECRET, mid, ts, body),
                            std_sig(OLD, mid, ts, body)]
            want = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert h["x-email-signature"] == want
            obj = json.loads(body)
            assert obj == by_id[mid]
        assert sorted(json.loads(b)["seq"] for _, b in rcv.hits) == \
            sorted(e["seq"] for e in page["events"])
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def test_retries_keep_the_id_and_410_disables(tmpdir_path):
    flaky = Receiver([500, 500])
    gone = Receiver([410])
    s = start(tmpdir_path, [(flaky.url, ["ticket.created"], [SECRET]),
                            (gone.url, ["ticket.created"], [SECRET])])
    try:
        send(s)
        assert wait(lambda: len(flaky.hits) >= 3), flaky.hits
        ids = [h["webhook-id"] for h, _ in flaky.hits]
        assert len(set(ids)) == 1 and len(ids) == 3
        # the filter: only ticket.created
        assert json.loads(flaky.hits[0][1])["type"] == "ticket.created"
        assert wait(lambda: len(gone.hits) >= 1)
        send(s, "second")
        assert wait(lambda: len(flaky.hits) >= 4)
        time.sleep(1.0)
        assert len(gone.hits) == 1, "a 410 must disable the subscription"
    finally:
        assert s.stop() in (0, None)
        flaky.close()
        gone.close()


def private_target_server(tmp, rcv):
    """A server subscribing rcv (loopback) without webhooks_allow_private."""
    s = Server(tmp)
    text = open(s.config).read().replace(
        "  - name: acme\n", "  - name: acme\n    webhooks:\n      - url: %s\n"
        "        secrets: [\"%s\"]\n" % (rcv.url, SECRET), 1)
    open(s.config, "w").write(text)
    return s


def test_private_targets_refused_by_default(tmpdir_path):
    rcv = Receiver()
    s = private_target_server(tmpdir_path, rcv).start()
    try:
        send(s)
        time.sleep(2.0)
        assert rcv.hits == []
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def test_serve_flag_allows_private_targets(tmpdir_path):
    rcv = Receiver()
    s = private_target_server(tmpdir_path, rcv).start(
        "--webhooks-allow-private")
    try:
        send(s)
        assert wait(lambda: len(rcv.hits) >= 3), rcv.hits
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def test_bad_webhook_config_names_line(tmpdir_path):
    s = Server(tmpdir_path)
    text = open(s.config).read().replace(
        "  - name: acme\n", "  - name: acme\n    webhooks:\n"
        "      - url: ftp://x.test/\n        secrets: [\"%s\"]\n" % SECRET, 1)
    open(s.config, "w").write(text)
    r = s.cli("config", "check")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0
    assert "must start with http:// or https://" in out, out
    assert ":" in out
