"""Rules in the server (docs/rules.md, issue 6): `rules: PATH` in the
config, evaluation in the worker, the outcome on the ticket and its
applied_rules, and reload by SIGHUP and POST /api/v1/admin/reload, where
a broken file keeps the rules in force."""

import http.server
import json
import os
import signal
import smtplib
import threading
import time

import pytest

from conftest import Server, message

RULES = """\
tenants:
  acme:
    - name: RouteBillingMailbox
      if: {mailbox: billing@acme.test}
      then: {queue: finance}
    - name: SecurityMailbox
      if: {mailbox: security@acme.test}
      then: {priority: urgent, queue: security, notify: security-pager}
    - name: EnterpriseCustomers
      if: {from_domain: enterprise.example}
      then:
        queue: enterprise
        assignee: dana
        add_tags: vip
    - name: UrgentInSubject
      if: {subject: urgent}
      then: {priority: high}
    - name: DropNewsletters
      if: {subject: {contains: newsletter}}
      then: {ignore: true}
      stop: true
    - name: MuteReplies
      if: {new_ticket: false, subject: {contains: muted}}
      then: {ignore: true}
      stop: true
    - name: InvoiceNumber
      if: {subject: {regex: '\\b(INV-[0-9]{6})\\b', extract: invoice}}
      then:
        set_field: {source: email}
    - name: RepeatCustomer
      if: {from: carol@repeat.test, previous_tickets: {min: 2}}
      then: {add_tags: repeat}
    - name: Acknowledge
      then:
        auto_acknowledge: {template: received, text: "We got it."}
"""

# The same, but billing goes to another queue.
RULES_V2 = RULES.replace("queue: finance}", "queue: accounts}")

BROKEN = "tenants:\n  acme:\n    - name: X\n      then: {queue: [}\n"


class Pager:
    """A loopback Slack incoming webhook: records each JSON body."""

    def __init__(self):
        self.posts = []
        pager = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                pager.posts.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/services/T0/B0/x" % (
            self.srv.server_address[1])
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


@pytest.fixture
def srv(tmpdir_path):
    s = Server(tmpdir_path)
    s.pager = Pager()
    s.rules = os.path.join(tmpdir_path, "rules.yaml")
    with open(s.rules, "w") as f:
        f.write(RULES)
    text = open(s.config).read()
    text = text.replace("      - support@acme.test\n",
                        "      - support@acme.test\n"
                        "      - billing@acme.test\n"
                        "      - security@acme.test\n", 1)
    text = text.replace("  - name: acme\n",
                        "  - name: acme\n    integrations:\n"
                        "      - name: security-pager\n"
                        "        kind: slack\n"
                        "        url: %s\n" % s.pager.url, 1)
    with open(s.config, "w") as f:
        f.write("webhooks_allow_private: true\n" + text +
                "rules: %s\n" % s.rules)
    s.start()
    yield s
    rc = s.stop()
    s.pager.srv.shutdown()
    assert rc in (0, None), open(s.log).read()


def send(srv, raw, rcpt="support@acme.test", mail_from="alice@customer.test"):
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=20) as c:
        c.ehlo("mail.customer.test")
        refused = c.sendmail(mail_from, [rcpt], raw)
    assert not refused, refused


def ticket(srv, tok, subject, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        for t in srv.all_tickets(tok):
            if t["subject"] == subject:
                st, doc = srv.json_call("GET", "/api/v1/tickets/%d" % t["id"],
                                        tok)
                assert st == 200, doc
                return doc
        time.sleep(0.1)
    raise AssertionError("no ticket %r:\n%s" % (subject, open(srv.log).read()))


def decisions(t):
    return [(d["name"], d["decision"]) for d in t["applied_rules"]]


def test_routing_and_trail(srv):
    tok = srv.token()
    send(srv, message("Invoice question", to="billing@acme.test"),
         rcpt="billing@acme.test")
    send(srv, message("URGENT: server down"))
    send(srv, message("Contract renewal",
                      frm="Bob <bob@enterprise.example>"),
         mail_from="bob@enterprise.example")
    send(srv, message("Out of office", extra="Auto-Submitted: auto-replied\r\n"))
    send(srv, message("Plain hello"))
    send(srv, message("Possible account takeover", to="security@acme.test"),
         rcpt="security@acme.test")

    t = ticket(srv, tok, "Invoice question")
    assert t["queue"] == "finance"
    assert t["priority"] == "normal"
    assert ("RouteBillingMailbox", "queue=finance") in decisions(t)
    assert ("Acknowledge", "auto_ack=received") in decisions(t)

    t = ticket(srv, tok, "URGENT: server down")
    assert t["priority"] == "high"
    assert t["queue"] is None
    assert ("UrgentInSubject", "priority=high") in decisions(t)

    t = ticket(srv, tok, "Contract renewal")
    assert t["queue"] == "enterprise"
    assert t["assignee"] == "dana"
    assert t["tags"] == ["vip"]
    assert decisions(t)[:3] == [("EnterpriseCustomers", "queue=enterprise"),
                                ("EnterpriseCustomers", "assignee=dana"),
                                ("EnterpriseCustomers", "tag+=vip")]

    t = ticket(srv, tok, "Out of office")
    d = decisions(t)
    assert not any(x[1].startswith("auto_ack=") for x in d), d
    assert ("Acknowledge", "auto_ack_suppressed=autoreply") in d, d

    t = ticket(srv, tok, "Plain hello")
    assert t["queue"] is None and t["priority"] == "normal"
    assert decisions(t) == [("Acknowledge", "auto_ack=received")]

    # security@ is urgent and pages: the notify action reaches the
    # tenant's Slack integration, and only for that ticket.
    t = ticket(srv, tok, "Possible account takeover")
    assert t["priority"] == "urgent" and t["queue"] == "security"
    assert ("SecurityMailbox", "notify=security-pager") in decisions(t)
    end = time.time() + 20
    while time.time() < end and not srv.pager.posts:
        time.sleep(0.1)
    assert len(srv.pager.posts) == 1, srv.pager.posts
    assert "Possible account takeover" in json.dumps(srv.pager.posts[0])


def test_reply_appends_to_trail(srv):
    tok = srv.token()
    first = message("Billing thread", to="billing@acme.test",
                    msgid="<first-1@customer.test>")
    send(srv, first, rcpt="billing@acme.test")
    t = ticket(srv, tok, "Billing thread")
    reply = message("Re: Billing thread urgent", to="billing@acme.test",
                    extra="In-Reply-To: <first-1@customer.test>\r\n")
    send(srv, reply, rcpt="billing@acme.test")
    end = time.time() + 20
    while time.time() < end:
        st, t = srv.json_call("GET", "/api/v1/tickets/%d" % t["id"], tok)
        if len(t["messages"]) == 2:
            break
        time.sleep(0.1)
    assert len(t["messages"]) == 2, t
    # The reply's outcome: the rule set priority, so the ticket takes it;
    # its acknowledgement is refused because it joins a ticket.
    assert t["priority"] == "high"
    d = decisions(t)
    assert d.count(("RouteBillingMailbox", "queue=finance")) == 2, d
    assert ("Acknowledge", "auto_ack_suppressed=reply") in d, d


def wait_log(srv, needle, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if needle in open(srv.log).read():
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (needle, open(srv.log).read()))


def test_sighup_reload(srv):
    tok = srv.token()
    with open(srv.rules, "w") as f:
        f.write(BROKEN)
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "the previous rules stay")
    send(srv, message("After broken", to="billing@acme.test"),
         rcpt="billing@acme.test")
    assert ticket(srv, tok, "After broken")["queue"] == "finance"

    with open(srv.rules, "w") as f:
        f.write(RULES_V2)
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "rules reloaded from")
    send(srv, message("After good", to="billing@acme.test"),
         rcpt="billing@acme.test")
    assert ticket(srv, tok, "After good")["queue"] == "accounts"


def test_api_reload(srv):
    admin = srv.token()
    agent = srv.token(role="agent")
    st, _ = srv.json_call("POST", "/api/v1/admin/reload", agent)
    assert st == 403

    with open(srv.rules, "w") as f:
        f.write(BROKEN)
    st, hdrs, body = srv.http_call("POST", "/api/v1/admin/reload", None, admin)
    assert st == 422, body
    assert hdrs["Content-Type"].startswith("application/problem+json")
    import json
    doc = json.loads(body)
    assert doc["errors"] and all(":" in e for e in doc["errors"]), doc
    send(srv, message("Still finance", to="billing@acme.test"),
         rcpt="billing@acme.test")
    assert ticket(srv, admin, "Still finance")["queue"] == "finance"

    with open(srv.rules, "w") as f:
        f.write(RULES_V2)
    st, doc = srv.json_call("POST", "/api/v1/admin/reload", admin)
    assert st == 200, doc
    assert doc["rules"] == "reloaded"
    assert doc["rule_count"] == RULES_V2.count("- name:")
    send(srv, message("Now accounts", to="billing@acme.test"),
         rcpt="billing@acme.test")
    assert ticket(srv, admin, "Now accounts")["queue"] == "accounts"


def test_broken_rules_refuse_start(tmpdir_path):
    s = Server(tmpdir_path)
    path = os.path.join(tmpdir_path, "rules.yaml")
    with open(path, "w") as f:
        f.write(BROKEN)
    with open(s.config, "a") as f:
        f.write("rules: %s\n" % path)
    r = s.cli("serve")
    assert r.returncode == 78, r
    assert path.encode() + b":" in r.stderr, r.stderr


def ignored(srv, tok, n, timeout=20.0):
    """The ignored list once it has n entries (it never shrinks)."""
    end = time.time() + timeout
    while time.time() < end:
        st, doc = srv.json_call("GET", "/api/v1/ignored?limit=200", tok)
        assert st == 200, doc
        if len(doc["ignored"]) >= n:
            return doc["ignored"]
        time.sleep(0.1)
    raise AssertionError("not %d ignored:\n%s" % (n, open(srv.log).read()))


def metric(srv, name):
    st, _, body = srv.http_call("GET", "/metrics", None, None)
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_ignore_keeps_message_without_ticket(srv):
    admin = srv.token()
    agent = srv.token(role="agent")
    raw = message("Our monthly newsletter", msgid="<news-1@customer.test>")
    send(srv, raw)
    lst = ignored(srv, admin, 1)
    assert len(lst) == 1
    e = lst[0]
    assert e["message_id"] == "news-1@customer.test"
    assert e["subject"] == "Our monthly newsletter"
    assert e["from"] == "alice@customer.test"
    assert e["matched_rules"] == ["DropNewsletters"]
    assert ["DropNewsletters", "ignore"] in [[d["name"], d["decision"]]
                                             for d in e["applied_rules"]]
    assert e["raw_sha256"]
    assert metric(srv, "mailroom_ignored_total") == 1
    # No ticket was made.
    assert not any(t["subject"] == "Our monthly newsletter"
                   for t in srv.all_tickets(admin))
    # Admins only.
    st, _ = srv.json_call("GET", "/api/v1/ignored", agent)
    assert st == 403

    # The same message again is a duplicate of the ignored one.
    dup_before = metric(srv, "mailroom_duplicates_total")
    send(srv, raw)
    end = time.time() + 20
    while time.time() < end and \
            metric(srv, "mailroom_duplicates_total") == dup_before:
        time.sleep(0.1)
    assert metric(srv, "mailroom_duplicates_total") == dup_before + 1
    st, doc = srv.json_call("GET", "/api/v1/ignored", admin)
    assert len(doc["ignored"]) == 1
    assert metric(srv, "mailroom_ignored_total") == 1

    # The command line shows the same list.
    r = srv.cli("tickets", "ignored", "--json", "--tenant", "acme")
    assert r.returncode == 0, r
    import json
    assert [x["message_id"] for x in json.loads(r.stdout)["ignored"]] == \
        ["news-1@customer.test"]


def test_ignore_follows_threading_outcome(srv):
    tok = srv.token()
    send(srv, message("muted topic", msgid="<muted-1@customer.test>"))
    # new_ticket: false in the rule: the first message makes a ticket.
    t = ticket(srv, tok, "muted topic")
    assert t["messages"][0]["matched_rules"] == ["Acknowledge"]
    send(srv, message("Re: muted topic", msgid="<muted-2@customer.test>",
                      extra="In-Reply-To: <muted-1@customer.test>\r\n"))
    lst = ignored(srv, tok, 1)
    assert lst[0]["message_id"] == "muted-2@customer.test"
    assert lst[0]["matched_rules"] == ["MuteReplies"]
    st, t = srv.json_call("GET", "/api/v1/tickets/%d" % t["id"], tok)
    assert len(t["messages"]) == 1
    assert not any(d["name"] == "MuteReplies" for d in t["applied_rules"])


def test_fields_and_matched_rules(srv):
    tok = srv.token()
    send(srv, message("URGENT: about INV-123456"))
    t = ticket(srv, tok, "URGENT: about INV-123456")
    assert t["fields"] == {"invoice": "INV-123456", "source": "email"}
    assert t["messages"][0]["matched_rules"] == [
        "UrgentInSubject", "InvoiceNumber", "Acknowledge"]
    send(srv, message("Plain fields"))
    t = ticket(srv, tok, "Plain fields")
    assert t["fields"] == {}
    assert t["messages"][0]["matched_rules"] == ["Acknowledge"]


def test_previous_tickets(srv):
    tok = srv.token()
    tags = []
    for i in range(3):
        subject = "Carol question %d" % i
        send(srv, message(subject, frm="Carol <carol@repeat.test>"),
             mail_from="carol@repeat.test")
        # Counted before delivery: wait for each ticket in turn.
        tags.append(ticket(srv, tok, subject)["tags"])
    assert tags == [[], [], ["repeat"]]
