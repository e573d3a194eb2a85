# SPDX-License-Identifier: Apache-2.0
"""Integrations (issue 7, docs/integrations.md): a rule's `notify: NAME`
reaches a Slack incoming webhook, GitHub Issues and Jira, each checked by a
loopback receiver for the request shape, headers and authentication the
real service documents and answering as it does; the issue URL and the
Jira key end up on the ticket; retries after a 500 record the issue once;
a 4xx is dead at once; an unknown name is warned about and recorded."""
import base64
import http.server
import json
import os
import sqlite3
import threading
import time

from conftest import Server, message

CT = {"Content-Type": "message/rfc822"}
GH_TOKEN = "ghp_e2eTOKEN0123456789"
JIRA_USER = "bot@acme.test"
JIRA_TOKEN = "jira-api-token-0123"


class Receiver:
    """Loopback HTTP service: `check(path, headers, body)` returns an error
    string (answered 400/401 as the service would) or None; `script` gives
    the statuses to answer before the normal one."""

    def __init__(self, check, answer, script=None):
        self.hits = []
        self.script = list(script or [])
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                rcv.hits.append((self.path, hdrs, body))
                code, out = 0, b""
                if rcv.script:
                    code = rcv.script.pop(0)
                    out = b'{"message": "scripted"}'
                else:
                    bad = check(self.path, hdrs, body)
                    if bad:
                        code, out = bad
                    else:
                        code, out = answer(len(rcv.hits))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def slack_check(path, h, body):
    if path != "/services/T0/B0/XYZ":
        return 404, b"no_service"
    if not h.get("content-type", "").startswith("application/json"):
        return 400, b"invalid_payload"
    try:
        doc = json.loads(body)
    except ValueError:
        return 400, b"invalid_payload"
    if not isinstance(doc.get("text"), str) or not isinstance(
            doc.get("blocks"), list):
        return 400, b"invalid_blocks"
    return None


def github_check(path, h, body):
    # docs.github.com/en/rest/issues/issues#create-an-issue
    if path != "/repos/acme/support/issues":
        return 404, b'{"message": "Not Found"}'
    if h.get("authorization") != "Bearer " + GH_TOKEN:
        return 401, b'{"message": "Bad credentials"}'
    if h.get("accept") != "application/vnd.github+json" or \
            h.get("x-github-api-version") != "2022-11-28" or \
            not h.get("user-agent"):
        return 400, b'{"message": "bad headers"}'
    doc = json.loads(body)
    if not isinstance(doc.get("title"), str) or not doc["title"] or \
            not isinstance(doc.get("body"), str) or \
            not isinstance(doc.get("labels", []), list):
        return 422, b'{"message": "Validation Failed"}'
    return None


def gh_answer(n):
    return 201, json.dumps({
        "number": n,
        "html_url": "https://github.com/acme/support/issues/%d" % n,
        "url": "https://api.github.com/repos/acme/support/issues/%d" % n,
        "state": "open"}).encode()


def jira_check(path, h, body):
    # developer.atlassian.com: POST /rest/api/2/issue, Basic user:api_token
    if path != "/rest/api/2/issue":
        return 404, b'{"errorMessages": ["not found"]}'
    want = "Basic " + base64.b64encode(
        ("%s:%s" % (JIRA_USER, JIRA_TOKEN)).encode()).decode()
    if h.get("authorization") != want:
        return 401, b'{"errorMessages": ["unauthorized"]}'
    if not h.get("content-type", "").startswith("application/json"):
        return 415, b'{"errorMessages": ["unsupported media type"]}'
    f = json.loads(body).get("fields", {})
    if f.get("project", {}).get("key") != "SUP" or \
            f.get("issuetype", {}).get("name") != "Task" or \
            not isinstance(f.get("summary"), str) or \
            not isinstance(f.get("description"), str):
        return 400, b'{"errors": {"project": "bad"}}'
    return None


def start(tmp, slack, gh, jira, rules, gh_token=GH_TOKEN):
    s = Server(tmp)
    s.rules = os.path.join(tmp, "rules.yaml")
    with open(s.rules, "w") as f:
        f.write(rules)
    text = open(s.config).read()
    block = (
        "    integrations:\n"
        "      - {name: oncall-slack, kind: slack, url: %s/services/T0/B0/XYZ}\n"
        "      - name: gh\n"
        "        kind: github\n"
        "        repo: acme/support\n"
        "        token: %s\n"
        "        api_url: %s\n"
        "        labels: [support]\n"
        "      - name: jira\n"
        "        kind: jira\n"
        "        base_url: %s\n"
        "        project: SUP\n"
        "        user: %s\n"
        "        token_env: E2E_JIRA_TOKEN\n"
        % (slack.base, gh_token, gh.base, jira.base, JIRA_USER))
    text = text.replace("  - name: acme\n", "  - name: acme\n" + block, 1)
    text = ("webhooks_allow_private: true\nwebhook_retry_scale: 0.001\n"
            "ticket_url: \"https://help.acme.test/tickets/{id}\"\n" + text +
            "rules: %s\n" % s.rules)
    open(s.config, "w").write(text)
    os.environ["E2E_JIRA_TOKEN"] = JIRA_TOKEN
    return s.start()


def send(s, subject, body="Hi there.\n", msgid=None, extra=""):
    ingest = s.token(role="ingest")
    st, _, out = s.http_call(
        "POST", "/api/v1/messages",
        message(subject=subject, body=body, msgid=msgid, extra=extra,
                frm="Alice <alice@customer.test>"), ingest, CT)
    assert st == 202, out


def wait(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def rows(s):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(s.data,
                                                          "mailroom.db"),
                         uri=True, timeout=10)
    try:
        return [dict(zip(("integration", "kind", "state", "attempts",
                          "last_error", "external_ref", "ticket_id"), r))
                for r in db.execute(
                    "SELECT integration, kind, state, attempts, last_error,"
                    " external_ref, ticket_id FROM notifications ORDER BY id")]
    finally:
        db.close()


def the_ticket(s, tok):
    tickets = s.wait_stored(tok, 1)
    assert tickets, open(s.log).read()
    st, doc = s.json_call("GET", "/api/v1/tickets/%d" % tickets[0]["id"], tok)
    assert st == 200, doc
    return doc


RULES = """\
tenants:
  acme:
    - name: Outage
      if: {subject: {contains: outage}}
      then:
        queue: ops
        priority: urgent
        notify: [oncall-slack, gh, jira, ghost]
"""


def test_each_integration_gets_its_payload(tmpdir_path):
    slack = Receiver(slack_check, lambda n: (200, b"ok"))
    gh = Receiver(github_check, gh_answer)
    jira = Receiver(jira_check, lambda n: (201, json.dumps({
        "id": "1000%d" % n, "key": "SUP-%d" % n,
        "self": jira.base + "/rest/api/2/issue/1000%d" % n}).encode()))
    s = start(tmpdir_path, slack, gh, jira, RULES)
    try:
        body = ("The <b>API</b> is down & nothing works.\n\x07"
                + "x" * 600 + "\n")
        send(s, "Big outage <!channel>", body=body,
             msgid="<outage-1@customer.test>")
        tok = s.token(role="read")
        assert wait(lambda: slack.hits and gh.hits and jira.hits), \
            open(s.log).read()

        # Slack: escaped summary, link, sanitized and cut excerpt.
        path, h, raw = slack.hits[0]
        doc = json.loads(raw)
        t = the_ticket(s, tok)
        assert doc["text"] == ("Ticket #%d: Big outage &lt;!channel&gt; "
                               "(from Alice &lt;alice@customer.test&gt;)"
                               % t["number"])
        blocks = doc["blocks"]
        head = blocks[0]["text"]["text"]
        assert "<https://help.acme.test/tickets/%d|Ticket #%d>" % (
            t["id"], t["number"]) in head
        ctx = blocks[1]["elements"][0]["text"]
        assert "Queue: ops" in ctx and "Priority: urgent" in ctx
        ex = blocks[2]["text"]["text"]
        assert ex.startswith("The &lt;b&gt;API&lt;/b&gt; is down &amp; "
                             "nothing works. xxx")
        assert "\x07" not in ex and "\n" not in ex and ex.endswith("\u2026")
        assert len(ex.replace("&lt;", "<").replace("&gt;", ">")
                   .replace("&amp;", "&")) == 301

        # GitHub: title, message_id in the body, labels.
        path, h, raw = gh.hits[0]
        doc = json.loads(raw)
        assert doc["title"] == "[#%d] Big outage <!channel>" % t["number"]
        assert "Message-ID: <outage-1@customer.test>" in doc["body"]
        assert "```text\n" in doc["body"]
        assert doc["labels"] == ["support"]

        # Jira: fields, description with the message_id.
        path, h, raw = jira.hits[0]
        f = json.loads(raw)["fields"]
        assert f["summary"] == "[#%d] Big outage <!channel>" % t["number"]
        assert "{noformat}" in f["description"]
        assert "<outage-1@customer.test>" in f["description"]

        # Recorded on the ticket.
        assert wait(lambda: len(the_ticket(s, tok)["links"]) == 2)
        links = the_ticket(s, tok)["links"]
        assert links["gh"] == {
            "kind": "github", "number": 1,
            "url": "https://github.com/acme/support/issues/1"}
        assert links["jira"]["key"] == "SUP-1"
        assert links["jira"]["url"] == jira.base + "/browse/SUP-1"
        assert links["jira"]["self"] == jira.base + "/rest/api/2/issue/10001"

        # The unknown name: warned at start, recorded dead.
        assert wait(lambda: any(r["integration"] == "ghost" and
                                r["state"] == "dead" for r in rows(s)))
        ghost = [r for r in rows(s) if r["integration"] == "ghost"][0]
        assert ghost["last_error"].startswith("notify_unknown")
        assert "notifies 'ghost'" in open(s.log).read()
        by = {r["integration"]: r for r in rows(s)}
        assert by["gh"]["state"] == "sent" and by["gh"]["kind"] == "github"
        assert by["gh"]["external_ref"] == \
            "https://github.com/acme/support/issues/1"
        assert by["jira"]["external_ref"] == "SUP-1"
        assert by["oncall-slack"]["state"] == "sent"

        # A reply that matches again: Slack again, no second issue.
        send(s, "Re: Big outage <!channel>",
             extra="In-Reply-To: <outage-1@customer.test>\r\n")
        assert wait(lambda: len(slack.hits) == 2), open(s.log).read()
        assert wait(lambda: sum(r["integration"] == "gh" and
                                r["state"] == "sent" for r in rows(s)) == 2)
        time.sleep(0.5)
        assert len(gh.hits) == 1 and len(jira.hits) == 1
    finally:
        assert s.stop() in (0, None), open(s.log).read()
        for r in (slack, gh, jira):
            r.close()


def test_retried_after_500_and_recorded_once(tmpdir_path):
    slack = Receiver(slack_check, lambda n: (200, b"ok"), script=[503])
    gh = Receiver(github_check, gh_answer, script=[500])
    jira = Receiver(jira_check, lambda n: (201, b"{}"))
    rules = RULES.replace("[oncall-slack, gh, jira, ghost]",
                          "[oncall-slack, gh]")
    s = start(tmpdir_path, slack, gh, jira, rules)
    try:
        send(s, "outage again")
        tok = s.token(role="read")
        assert wait(lambda: all(r["state"] == "sent" for r in rows(s))
                    and len(rows(s)) == 2), (rows(s), open(s.log).read())
        assert len(gh.hits) == 2 and len(slack.hits) == 2
        assert gh.hits[0][2] == gh.hits[1][2]  # the same request again
        by = {r["integration"]: r for r in rows(s)}
        assert by["gh"]["attempts"] == 2 and by["gh"]["last_error"] is None
        links = the_ticket(s, tok)["links"]
        # The 201 came with the receiver's second hit: issue number 2.
        assert links == {"gh": {
            "kind": "github", "number": 2,
            "url": "https://github.com/acme/support/issues/2"}}
        assert jira.hits == []
    finally:
        assert s.stop() in (0, None), open(s.log).read()
        for r in (slack, gh, jira):
            r.close()


def test_4xx_is_dead_with_the_reason(tmpdir_path):
    slack = Receiver(slack_check, lambda n: (200, b"ok"))
    gh = Receiver(github_check, gh_answer)
    jira = Receiver(jira_check, lambda n: (201, b"{}"))
    rules = RULES.replace("[oncall-slack, gh, jira, ghost]", "gh")
    s = start(tmpdir_path, slack, gh, jira, rules, gh_token="ghp_wrong")
    try:
        send(s, "outage, wrong token")
        assert wait(lambda: rows(s) and rows(s)[0]["state"] == "dead"), \
            open(s.log).read()
        r = rows(s)[0]
        assert r["attempts"] == 1
        assert r["last_error"] == "HTTP 401: {\"message\": \"Bad credentials\"}"
        time.sleep(0.3)
        assert len(gh.hits) == 1
    finally:
        assert s.stop() in (0, None), open(s.log).read()
        for r in (slack, gh, jira):
            r.close()
