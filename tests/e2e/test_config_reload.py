# SPDX-License-Identifier: Apache-2.0
"""Configuration reload (docs/configuration.md "Reloading"): SIGHUP and
POST /api/v1/admin/reload apply each tenant's integrations and webhook
subscriptions from the file again; a broken file changes nothing and says
where it is broken; any other changed key (a listener) is reported as
needing a restart and is not applied."""
import http.server
import json
import os
import re
import signal
import threading
import time

from conftest import Server, message

CT = {"Content-Type": "message/rfc822"}
SECRET = "reload-secret-0123456789"

RULES = """\
tenants:
  acme:
    - name: Outage
      if: {subject: {contains: outage}}
      then:
        notify: [chat]
"""


class Receiver:
    """Loopback HTTP receiver: records every POST, answers 200."""

    def __init__(self):
        self.hits = []
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                rcv.hits.append((self.path, self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def write_config(s, slack_url, webhook_url=None, extra=""):
    block = ("    integrations:\n"
             "      - {name: chat, kind: slack, url: \"%s\"}\n" % slack_url)
    if webhook_url:
        block += ("    webhooks:\n"
                  "      - url: \"%s\"\n"
                  "        secrets: [\"%s\"]\n" % (webhook_url, SECRET))
    text = s.base_text.replace("  - name: acme\n",
                               "  - name: acme\n" + block, 1)
    text = ("webhooks_allow_private: true\nwebhook_retry_scale: 0.001\n" +
            text + "rules: %s\n" % s.rules + extra)
    with open(s.config, "w") as f:
        f.write(text)


def start(tmp, slack_url):
    s = Server(tmp)
    s.base_text = open(s.config).read()
    s.rules = os.path.join(tmp, "rules.yaml")
    with open(s.rules, "w") as f:
        f.write(RULES)
    write_config(s, slack_url)
    return s.start()


def send(s, subject, ingest=None):
    # `mailroom token create` reads the config: with a broken file, pass
    # a token made before.
    ingest = ingest or s.token(role="ingest")
    st, _, out = s.http_call(
        "POST", "/api/v1/messages",
        message(subject=subject, frm="Alice <alice@customer.test>"),
        ingest, CT)
    assert st == 202, out


def wait(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def log_has(s, text):
    return text in open(s.log).read()


def slack_texts(rcv):
    return [json.loads(body)["text"] for _, body in rcv.hits]


def test_sighup_moves_slack_to_the_new_url(tmpdir_path):
    old, new = Receiver(), Receiver()
    s = start(tmpdir_path, old.base + "/services/old")
    try:
        send(s, "First outage")
        assert wait(lambda: old.hits), open(s.log).read()
        assert old.hits[0][0] == "/services/old"

        write_config(s, new.base + "/services/new")
        s.proc.send_signal(signal.SIGHUP)
        assert wait(lambda: log_has(s, "configuration reloaded from")), \
            open(s.log).read()
        send(s, "Second outage")
        assert wait(lambda: new.hits), open(s.log).read()
        assert new.hits[0][0] == "/services/new"
        assert any("Second outage" in t for t in slack_texts(new))
        assert len(old.hits) == 1
        # Only the reloadable parts changed: nothing needs a restart.
        assert "needs a restart" not in open(s.log).read()
        # Clean exit (under the sanitizers: no leak, no error).
        assert s.stop() == 0, open(s.log).read()
    finally:
        s.stop()
        old.close()
        new.close()


def test_admin_reload_adds_a_webhook(tmpdir_path):
    chat, hook = Receiver(), Receiver()
    s = start(tmpdir_path, chat.base + "/services/x")
    try:
        admin = s.token()
        write_config(s, chat.base + "/services/x", hook.base + "/hook")
        st, doc = s.json_call("POST", "/api/v1/admin/reload", admin)
        assert st == 200, doc
        assert doc["rules"] == "reloaded"
        assert doc["config"]["file"] == s.config
        assert doc["config"]["webhooks"] == 1
        assert doc["config"]["integrations"] == 1
        assert doc["config"]["restart_required"] == []
        st, subs = s.json_call("GET", "/api/v1/webhooks", admin)
        assert st == 200, subs
        assert hook.base + "/hook" in json.dumps(subs)

        send(s, "Hello hooks")
        assert wait(lambda: hook.hits), open(s.log).read()
        types = [json.loads(b)["type"] for _, b in hook.hits]
        assert "ticket.created" in types or "email.received" in types, types

        # Removed from the file again: the subscription goes inactive.
        write_config(s, chat.base + "/services/x")
        st, doc = s.json_call("POST", "/api/v1/admin/reload", admin)
        assert st == 200, doc
        assert doc["config"]["webhooks"] == 0
        # Clean exit (under the sanitizers: no leak, no error).
        assert s.stop() == 0, open(s.log).read()
    finally:
        s.stop()
        chat.close()
        hook.close()


def test_broken_file_keeps_what_is_in_force(tmpdir_path):
    old, other = Receiver(), Receiver()
    s = start(tmpdir_path, old.base + "/services/old")
    try:
        admin = s.token()
        ingest = s.token(role="ingest")
        good = open(s.config).read()
        # The new URL is fine, but another line is broken: nothing applies.
        write_config(s, other.base + "/services/new")
        text = open(s.config).read().replace(
            "kind: slack", "kind: slack, colour: red", 1)
        with open(s.config, "w") as f:
            f.write(text)
        st, hdrs, body = s.http_call("POST", "/api/v1/admin/reload", None,
                                     admin)
        assert st == 422, body
        assert hdrs["Content-Type"].startswith("application/problem+json")
        doc = json.loads(body)
        assert doc["config"] == "kept"
        assert doc["rules"] == "reloaded"
        line = [i + 1 for i, l in enumerate(text.splitlines())
                if "colour" in l][0]
        assert any(re.match(r"%s:%d:\d+: .*colour" % (re.escape(s.config),
                                                      line), e)
                   for e in doc["errors"]), doc

        s.proc.send_signal(signal.SIGHUP)
        assert wait(lambda: log_has(s, "configuration not reloaded")), \
            open(s.log).read()
        assert wait(lambda: re.search(r"mailroom\.yaml:%d:\d+:" % line,
                                      open(s.log).read())), \
            open(s.log).read()

        send(s, "Outage while broken", ingest)
        assert wait(lambda: old.hits), open(s.log).read()
        assert not other.hits

        with open(s.config, "w") as f:
            f.write(good)
        st, doc = s.json_call("POST", "/api/v1/admin/reload", admin)
        assert st == 200, doc
        # Clean exit (under the sanitizers: no leak, no error).
        assert s.stop() == 0, open(s.log).read()
    finally:
        s.stop()
        old.close()
        other.close()


def test_listener_change_needs_a_restart(tmpdir_path):
    chat = Receiver()
    s = start(tmpdir_path, chat.base + "/services/x")
    try:
        admin = s.token()
        text = open(s.config).read()
        moved = text.replace('http: "127.0.0.1:%d"' % s.http,
                             'http: "127.0.0.1:%d"' % (s.http + 1), 1)
        assert moved != text
        with open(s.config, "w") as f:
            f.write(moved)
        st, doc = s.json_call("POST", "/api/v1/admin/reload", admin)
        assert st == 200, doc
        assert doc["config"]["restart_required"] == ["listen"]
        # Not applied: still served on the old port.
        st, _ = s.json_call("GET", "/api/v1/webhooks", admin)
        assert st == 200

        s.proc.send_signal(signal.SIGHUP)
        assert wait(lambda: log_has(s, "'listen' changed in")), \
            open(s.log).read()
        # Clean exit (under the sanitizers: no leak, no error).
        assert s.stop() == 0, open(s.log).read()
    finally:
        s.stop()
        chat.close()
