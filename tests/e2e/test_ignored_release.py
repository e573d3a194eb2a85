# SPDX-License-Identifier: Apache-2.0
"""Releasing ignored mail (docs/rules.md, *Releasing*): a message the
rules ignored is announced by a message.ignored event; an agent's
POST /api/v1/ignored/{id}/release (or `mailroom tickets release ID`)
delivers it as new mail would be, with the rules again but without their
`ignore` and without an acknowledgement: a ticket with the message and
its attachments, the usual events, the release in the ticket's trail;
releasing twice is a 409; a released reply joins its ticket."""

import base64
import json
import os
import smtplib
import time

import pytest

from conftest import Server, message
from test_autoack import SmtpSink

RULES = """\
templates:
  received:
    subject: "Received: {{subject}}"
    text: "We have it."
tenants:
  acme:
    - name: DropNewsletters
      if: {subject: {contains: newsletter}}
      then: {ignore: true, add_tags: newsletter}
      stop: true
    - name: MuteReplies
      if: {new_ticket: false, subject: {contains: muted}}
      then: {ignore: true}
      stop: true
    - name: Acknowledge
      if: {new_ticket: true}
      then:
        auto_acknowledge: {template: received}
"""

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def srv(tmpdir_path):
    s = Server(tmpdir_path)
    s.sink = SmtpSink()
    s.rules = os.path.join(tmpdir_path, "rules.yaml")
    with open(s.rules, "w") as f:
        f.write(RULES)
    with open(s.config, "a") as f:
        f.write("rules: %s\n"
                "outbound:\n"
                "  smtp: \"127.0.0.1:%d\"\n"
                "  helo: mailroom.test\n"
                "  from: \"Support <support@acme.test>\"\n"
                "  timeout: 5s\n"
                "  backoff_base: 200ms\n" % (s.rules, s.sink.port))
    s.start()
    yield s
    rc = s.stop()
    s.sink.close()
    assert rc in (0, None), open(s.log).read()


def send(srv, raw, mail_from="alice@customer.test"):
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=20) as c:
        c.ehlo("mail.customer.test")
        refused = c.sendmail(mail_from, ["support@acme.test"], raw)
    assert not refused, refused


def with_attachment(subject, msgid):
    b64 = base64.encodebytes(PDF).decode().replace("\n", "\r\n")
    return ("From: Alice <alice@customer.test>\r\nTo: support@acme.test\r\n"
            "Subject: %s\r\nMessage-ID: %s\r\n"
            "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "This month's news.\r\n"
            "--b1\r\nContent-Type: application/pdf; name=issue.pdf\r\n"
            "Content-Disposition: attachment; filename=issue.pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s"
            "--b1--\r\n" % (subject, msgid, b64)).encode()


def events(srv, tok, type_=None):
    st, page = srv.json_call("GET", "/api/v1/events?after=0&limit=1000", tok)
    assert st == 200, page
    return [e for e in page["events"] if type_ is None or e["type"] == type_]


def wait_for(fn, what, srv, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("%s:\n%s" % (what, open(srv.log).read()))


def ignored_entry(srv, admin, message_id):
    st, doc = srv.json_call("GET", "/api/v1/ignored?limit=200", admin)
    assert st == 200, doc
    for e in doc["ignored"]:
        if e["message_id"] == message_id:
            return e
    return None


def released(srv, admin, message_id):
    def done():
        e = ignored_entry(srv, admin, message_id)
        return e if e and e["release"] and \
            e["release"]["state"] == "released" else None
    return wait_for(done, "not released", srv)


def test_ignored_event_and_release_into_new_ticket(srv):
    admin = srv.token()
    agent = srv.token(role="agent")
    reader = srv.token(role="read")
    # A normal message first: the sink proves acknowledgements go out.
    send(srv, message("Printer on fire", msgid="<fire-1@customer.test>"))
    assert len(srv.sink.wait(1)) == 1

    send(srv, with_attachment("Our newsletter", "<news-1@customer.test>"))
    ev = wait_for(lambda: events(srv, reader, "message.ignored"),
                  "no message.ignored event", srv)
    assert len(ev) == 1
    e = ev[0]
    assert e["ticket_id"] is None
    p = e["payload"]
    assert p["message_id"] == "news-1@customer.test"
    assert p["from"] == "alice@customer.test"
    assert p["subject"] == "Our newsletter"
    assert p["rules"] == ["DropNewsletters"]
    iid = p["ignored_id"]
    ent = ignored_entry(srv, admin, "news-1@customer.test")
    assert ent["id"] == iid and ent["release"] is None
    # The types filter knows it.
    st, page = srv.json_call(
        "GET", "/api/v1/events?after=0&types=message.ignored", reader)
    assert [x["type"] for x in page["events"]] == ["message.ignored"]
    # So do webhook subscriptions' filters.
    st, _, doc = srv.http_call(
        "POST", "/api/v1/webhooks",
        json.dumps({"url": "https://hooks.example.test/ign",
                    "events": ["message.ignored"],
                    "secrets": ["whsec_0123456789abcdef0123"]}).encode(),
        admin, {"Content-Type": "application/json"})
    assert st == 201, doc

    # Readers may not release; unknown ids are 404.
    st, doc = srv.json_call("POST", "/api/v1/ignored/%d/release" % iid,
                            reader)
    assert st == 403, doc
    st, doc = srv.json_call("POST", "/api/v1/ignored/99999/release", agent)
    assert st == 404, doc
    seq_before = max(x["seq"] for x in events(srv, reader))

    st, doc = srv.json_call("POST", "/api/v1/ignored/%d/release" % iid, agent)
    assert st == 202, doc
    assert doc["id"] == iid
    assert doc["release"]["state"] in ("queued", "released")
    assert doc["release"]["by"].startswith("api:mrt_")
    assert doc["release"]["job_id"] > 0

    ent = released(srv, admin, "news-1@customer.test")
    tid = ent["release"]["ticket_id"]
    assert tid and ent["release"]["message_row"]
    assert ent["release"]["released_at"]
    st, t = srv.json_call("GET", "/api/v1/tickets/%d" % tid, agent)
    assert st == 200, t
    assert t["subject"] == "Our newsletter"
    assert len(t["messages"]) == 1
    m = t["messages"][0]
    assert m["message_id"] == "news-1@customer.test"
    assert m["id"] == ent["release"]["message_row"]
    assert [a["filename"] for a in m["attachments"]] == ["issue.pdf"]
    st, _, body = srv.http_call("GET", m["attachments"][0]["url"],
                                token=agent)
    assert st == 200 and body == PDF
    # The rules ran again: their tags apply, their ignore did not.
    assert t["tags"] == ["newsletter"]
    trail = [[d["name"], d["decision"]] for d in t["applied_rules"]]
    assert ["DropNewsletters", "ignore"] in trail
    assert any(n == "(release)" and d.startswith(
        "released ignored=%d by=api:mrt_" % iid) for n, d in trail), trail

    # The usual events, naming the release.
    new = [x for x in events(srv, reader) if x["seq"] > seq_before]
    assert [x["type"] for x in new] == [
        "email.received", "ticket.created", "message.added"]
    for x in new:
        assert x["ticket_id"] == tid
        assert x["payload"]["released_from"] == iid
    assert new[0]["payload"]["event"]["subject"] == "Our newsletter"

    # No acknowledgement for a release: the agent acted, not the sender.
    time.sleep(1.5)
    assert len(srv.sink.messages) == 1

    # Twice: 409, by the API and the command line.
    st, doc = srv.json_call("POST", "/api/v1/ignored/%d/release" % iid, admin)
    assert st == 409, doc
    assert "released already" in doc["detail"]
    r = srv.cli("tickets", "release", str(iid), "--tenant", "acme")
    assert r.returncode == 65, r
    assert b"released already" in r.stderr


def test_released_reply_joins_its_ticket(srv):
    admin = srv.token()
    send(srv, message("muted topic", msgid="<muted-1@customer.test>"))
    first = wait_for(lambda: [t for t in srv.all_tickets(admin)
                              if t["subject"] == "muted topic"],
                     "no ticket", srv)[0]
    send(srv, message("Re: muted topic", msgid="<muted-2@customer.test>",
                      extra="In-Reply-To: <muted-1@customer.test>\r\n"))
    ent = wait_for(lambda: ignored_entry(srv, admin, "muted-2@customer.test"),
                   "reply not ignored", srv)
    assert ent["matched_rules"] == ["MuteReplies"]

    # From the command line, while the server runs.
    r = srv.cli("tickets", "release", str(ent["id"]), "--tenant", "acme",
                "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["id"] == ent["id"]
    assert doc["release"]["by"] == "cli"

    ent = released(srv, admin, "muted-2@customer.test")
    assert ent["release"]["ticket_id"] == first["id"]
    st, t = srv.json_call("GET", "/api/v1/tickets/%d" % first["id"], admin)
    assert [m["message_id"] for m in t["messages"]] == [
        "muted-1@customer.test", "muted-2@customer.test"]
    assert t["messages"][1]["threaded_by"] == "in_reply_to"
    assert ["(release)", "released ignored=%d by=cli" % ent["id"]] in [
        [d["name"], d["decision"]] for d in t["applied_rules"]]
    upd = [x for x in events(srv, admin, "ticket.updated")
           if x["payload"].get("released_from") == ent["id"]]
    assert len(upd) == 1 and upd[0]["ticket_id"] == first["id"]

    # A copy of the released message is a duplicate of the stored one.
    send(srv, message("Re: muted topic", msgid="<muted-2@customer.test>",
                      extra="In-Reply-To: <muted-1@customer.test>\r\n"))
    time.sleep(1.0)
    st, t = srv.json_call("GET", "/api/v1/tickets/%d" % first["id"], admin)
    assert len(t["messages"]) == 2
