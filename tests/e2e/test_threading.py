# SPDX-License-Identifier: Apache-2.0
"""Threading end to end (issue 4): real client mail, sent over SMTP to a
real `mailroom serve`, read back through the ticket API.

One test per scenario of the issue's Proof list, in its order, plus the
idempotency-under-load version of the kill -9 crash test. The mail comes
from mails.py, which writes what Gmail, Outlook, Apple Mail, Thunderbird,
Exchange, Postfix and Mailman put on the wire (research/pitfalls.md A, B).

Every message is delivered on its own SMTP session and the test waits for
the worker to finish it (send() -> settle()) before the next one goes, so
the order the server sees is the order the test wrote, and `threaded_by`
is deterministic. What is checked, through GET /api/v1/tickets[/{id}]:
how many tickets there are, which ticket each message joined, the
message's `threaded_by` (new, duplicate, token, in_reply_to, references,
subject), `unverified` and `auto.kind` where they matter, that the
requester never changes, and ticket statuses.

Messages are found by their Message-ID (the API's `message_id`, no angle
brackets); a message missing from every ticket, or stored twice, fails
with the tenant's tickets in the message.
"""
import json
import os
import random
import re
import smtplib
import sqlite3
import subprocess
import time
import urllib.parse

import pytest

import mails
from conftest import ROOT, Server, load_test
from mails import ago
from test_http import sign

ALICE = ("Alice Example", "alice@customer.test")
BOB = ("Bob Builder", "bob@customer.test")
CAROL = ("Carol Colleague", "carol@customer.test")
DAVE = ("Dave Operations", "dave@customer.test")
MALLORY = ("Mallory", "mallory@elsewhere.test")
SUPPORT = "support@acme.test"
GLOBEX = "help@globex.test"

PRINTER = ("Hello,\n\nthe printer on the second floor (HP LaserJet M507) "
           "shows \"offline\" since this morning.\nWe restarted it twice; "
           "the display says error 49.4C02.\n\nThanks,\nAlice\n")

SETTLE_S = 30  # per message; the worker takes milliseconds


# ---- delivery and waiting ------------------------------------------------

def metrics(server):
    """-> {name: value} of the unlabelled samples on /metrics."""
    st, _, body = server.http_call("GET", "/metrics")
    assert st == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            parts = line.split()
            if len(parts) == 2 and "{" not in parts[0]:
                out[parts[0]] = float(parts[1])
    return out


def settle(server, timeout=SETTLE_S):
    """Waits (bounded) until no job is ready or leased: every message
    acknowledged so far has been threaded, stored or dead-lettered."""
    end = time.time() + timeout
    g = {}
    while time.time() < end:
        g = metrics(server)
        if g.get("mailroom_queue_ready", 1) + g.get(
                "mailroom_queue_leased", 1) == 0:
            return g
        time.sleep(0.05)
    pytest.fail("the worker did not drain the queue in %ds: %s" % (
        timeout, {k: v for k, v in g.items() if "queue" in k or "dead" in k}))


def send(server, mail, rcpts=(SUPPORT,), mail_from=None):
    """One SMTP session for one message, as a client or an MTA sends it,
    then waits until the worker is done with it."""
    sender = mail.envelope_from if mail_from is None else mail_from
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=20) as c:
        c.ehlo("mail.customer.test")
        refused = c.sendmail(sender, list(rcpts), mail.raw)
    assert not refused, refused
    settle(server)


# ---- reading the API -------------------------------------------------------

def bare(mid):
    return (mid or "").strip().strip("<>")


def requester(ticket):
    r = ticket.get("requester")
    if isinstance(r, dict):
        r = r.get("email")
    return (r or "").lower()


def ticket_detail(server, tok, tid):
    st, t = server.json_call("GET", "/api/v1/tickets/%d" % tid, tok)
    assert st == 200, t
    return t


def list_tickets(server, tok, **query):
    """GET /api/v1/tickets with filters (status=, requester=, ...)."""
    st, page = server.json_call(
        "GET", "/api/v1/tickets?" + urllib.parse.urlencode(query), tok)
    assert st == 200, page
    return page["tickets"]


class View:
    """What one tenant's API shows now: every ticket with its messages."""

    def __init__(self, server, tok):
        self.tickets = [ticket_detail(server, tok, t["id"])
                        for t in server.all_tickets(tok)]
        self.tickets.sort(key=lambda t: t["id"])
        self.hits = {}
        for t in self.tickets:
            for m in t.get("messages") or []:
                self.hits.setdefault(bare(m.get("message_id")), []).append(
                    (t, m))

    def summary(self):
        return json.dumps([{
            "id": t["id"], "number": t.get("number"),
            "subject": t.get("subject"), "status": t.get("status"),
            "requester": requester(t),
            "messages": [(m.get("message_id"), m.get("threaded_by"))
                         for m in t.get("messages") or []]}
            for t in self.tickets], indent=1)

    def locate(self, mail):
        hits = self.hits.get(mail.msgid, [])
        assert hits, "message <%s> (%r) is in no ticket; tickets:\n%s" % (
            mail.msgid, mail.subject, self.summary())
        assert len(hits) == 1, "message <%s> stored %d times:\n%s" % (
            mail.msgid, len(hits), self.summary())
        return hits[0]

    def ticket_of(self, mail):
        return self.locate(mail)[0]

    def message(self, mail):
        return self.locate(mail)[1]

    def expect_tickets(self, n):
        got = len(self.tickets)
        assert got == n, "%d tickets, expected %d:\n%s" % (
            got, n, self.summary())

    def only_ticket(self):
        n = len(self.tickets)
        assert n == 1, "%d tickets, expected one:\n%s" % (n, self.summary())
        return self.tickets[0]


def assert_joined(view, mail, ticket, by):
    """mail is in `ticket`, threaded by `by`."""
    t, m = view.locate(mail)
    assert t["id"] == ticket["id"], (
        "<%s> (%r) went to ticket #%s, not #%s:\n%s" % (
            mail.msgid, mail.subject, t.get("number"), ticket.get("number"),
            view.summary()))
    assert m.get("threaded_by") == by, (
        "<%s> joined #%s by %r, expected %r" % (
            mail.msgid, t.get("number"), m.get("threaded_by"), by))
    return m


def assert_new(view, mail, others=()):
    """mail opened a ticket of its own (threaded_by new) -> that ticket."""
    t, m = view.locate(mail)
    assert m.get("threaded_by") == "new", (
        "<%s> (%r): threaded_by %r, expected a new ticket:\n%s" % (
            mail.msgid, mail.subject, m.get("threaded_by"), view.summary()))
    assert [x["message_id"] for x in t["messages"]][0] == mail.msgid
    for o in others:
        assert t["id"] != o["id"], view.summary()
    return t


def auto_kind(message):
    a = message.get("auto")
    return a.get("kind") if isinstance(a, dict) else a


def set_status_in_db(server, ticket_id, status):
    """Sets a ticket's status directly in the server's SQLite database.

    There is no write API for tickets yet (issue 4 is read-only), so the
    solved-ticket scenario puts the status where an agent's action would:
    the `status` column of `tickets` in server.data/mailroom.db, while the
    server runs (WAL, so this is one more writer). Replace this with the
    API call once tickets can be updated through it.
    """
    db = sqlite3.connect(os.path.join(server.data, "mailroom.db"),
                         timeout=30)
    try:
        with db:
            n = db.execute("UPDATE tickets SET status = ? WHERE id = ?",
                           (status, ticket_id)).rowcount
    finally:
        db.close()
    assert n == 1, "no ticket %d in the database" % ticket_id


TOKEN_ADDR = re.compile(r"^(?P<base>[^+@]+)\+t(?P<number>\d+)\."
                        r"(?P<mac>[A-Za-z0-9_-]+)@(?P<domain>[^@]+)$")


def reply_address(ticket):
    """The ticket's token address, support+t<number>.<mac>@<domain>.

    ASSUMPTION: the issue specifies the token (an HMAC under the server's
    secret, so a test cannot compute it) but not where the API shows it.
    These tests assume GET /api/v1/tickets/{id} carries it as
    "reply_address", e.g. "support+t1.ab12cd34ef@acme.test" (the address an
    agent's reply puts in Reply-To). If the API names it otherwise, change
    this function only.
    """
    addr = ticket.get("reply_address")
    assert addr, ("ticket #%s has no \"reply_address\" (assumed field of "
                  "GET /api/v1/tickets/{id} holding the token address); "
                  "keys: %s" % (ticket.get("number"), sorted(ticket)))
    m = TOKEN_ADDR.match(addr)
    assert m, "reply_address %r is not support+t<number>.<mac>@..." % addr
    assert int(m["number"]) == ticket["number"], addr
    return addr


# ---- the scenarios (issue 4, Proof) ----------------------------------------

def test_gmail_reply(server):
    """A follow-up from Gmail (In-Reply-To and References) joins its
    ticket; the requester and the ticket's subject stay."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(90))
    send(server, first)
    reply = mails.gmail(ALICE, [SUPPORT], reply_to=first, when=ago(30),
                        text="Any news? It is still offline and we have "
                             "a deadline today.\n")
    send(server, reply)
    v = View(server, tok)
    t = v.only_ticket()
    assert [m["message_id"] for m in t["messages"]] == [
        first.msgid, reply.msgid]
    assert_new(v, first)
    m = assert_joined(v, reply, t, "in_reply_to")
    assert not m.get("unverified")
    assert m["direction"] == "inbound"
    assert requester(t) == ALICE[1]
    assert t["subject"] == "Printer offline"


def test_outlook_reply_thread_index_only(server):
    """research/pitfalls.md 1: Outlook's reply carries Thread-Index and
    Thread-Topic but no In-Reply-To/References, and "RE:" in upper case.
    Only the subject fallback can place it (same requester, open ticket);
    a stranger with the same subject must not get in that way."""
    tok = server.token()
    first = mails.outlook(ALICE, [SUPPORT], "Printer offline", PRINTER,
                          when=ago(120))
    send(server, first)
    reply = mails.outlook(ALICE, [SUPPORT], reply_to=first, when=ago(20),
                          text="Hi,\n\nstill offline after the weekend. "
                               "Can someone come by?\n\nAlice\n")
    assert reply.subject == "RE: Printer offline"
    assert reply.header("In-Reply-To") is None
    assert reply.header("References") is None
    assert reply.header("Thread-Index").startswith(
        first.header("Thread-Index")[:30])
    send(server, reply)
    stranger = mails.outlook(MALLORY, [SUPPORT], "RE: Printer offline",
                             "We have the same problem, please help.\n",
                             when=ago(10))
    send(server, stranger)

    v = View(server, tok)
    v.expect_tickets(2)
    t = v.ticket_of(first)
    assert_new(v, first)
    m = assert_joined(v, reply, t, "subject")
    assert not m.get("unverified")
    t2 = assert_new(v, stranger, others=[t])
    assert requester(t) == ALICE[1]
    assert requester(t2) == MALLORY[1]


def test_apple_mail_reply(server):
    """Apple Mail on the requester's Mac answers her own thread started in
    Gmail: "Message-Id", a MIME-Version with a comment, QP UTF-8."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(240))
    send(server, first)
    reply = mails.apple_mail(ALICE, [SUPPORT], reply_to=first, when=ago(5),
                             text="One more thing – the tray 2 light "
                                  "blinks orange.\n\nGrüße\nAlice\n")
    assert reply.header("Message-Id") and reply.header("In-Reply-To")
    send(server, reply)
    v = View(server, tok)
    t = v.only_ticket()
    m = assert_joined(v, reply, t, "in_reply_to")
    assert (m.get("from") or {}).get("email") == ALICE[1]
    assert requester(t) == ALICE[1]
    assert len(t["messages"]) == 2


def test_reply_with_changed_subject_keeps_in_reply_to(server):
    """research/pitfalls.md 6a: a new subject, In-Reply-To intact. The
    header wins; the message keeps its subject, the ticket keeps its own."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(60))
    send(server, first)
    reply = mails.gmail(ALICE, [SUPPORT], reply_to=first, when=ago(10),
                        subject="Another question about invoice 2291",
                        text="While I have you: invoice 2291 lists the "
                             "printer twice.\n")
    send(server, reply)
    v = View(server, tok)
    t = v.only_ticket()
    m = assert_joined(v, reply, t, "in_reply_to")
    assert m["subject"] == "Another question about invoice 2291"
    assert t["subject"] == "Printer offline"
    assert requester(t) == ALICE[1]


def test_reply_without_in_reply_to_uses_references(server):
    """research/pitfalls.md 3: In-Reply-To was stripped, and the newest
    References entry is a message we never saw (the agent answered from
    Outlook); walking References newest to oldest finds the ticket."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(300))
    send(server, first)
    agent_reply = ("DB9PR01MB1234A1B2C3D4E5F6A7B8C9D0E1F2@DB9PR01MB1234."
                   "eurprd01.prod.outlook.com")
    reply = mails.gmail(ALICE, [SUPPORT], reply_to=first, when=ago(15),
                        text="That did not help, it is offline again.\n")
    reply = reply.without("In-Reply-To").replace(
        "References", "<%s> <%s>" % (first.msgid, agent_reply))
    assert reply.header("In-Reply-To") is None
    send(server, reply)
    v = View(server, tok)
    t = v.only_ticket()
    assert_joined(v, reply, t, "references")
    assert requester(t) == ALICE[1]


def test_reply_arrives_before_its_parent(server):
    """research/pitfalls.md 5: B (a reply to A) and C (a reply to B) come
    first; B opens the ticket, C joins it, and A, arriving last, joins it
    too (thread_refs) instead of opening a second one. Messages are listed
    oldest first by Date."""
    tok = server.token()
    a = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                    when=ago(180))
    b = mails.gmail(ALICE, [SUPPORT], reply_to=a, when=ago(120),
                    text="Forgot to say: it is the one next to the "
                         "kitchen.\n")
    c = mails.gmail(ALICE, [SUPPORT], reply_to=b, when=ago(60),
                    text="And now the one on floor 3 is offline too.\n")
    send(server, b)
    v = View(server, tok)
    t = v.only_ticket()
    assert_new(v, b)
    send(server, c)
    v = View(server, tok)
    assert_joined(v, c, t, "in_reply_to")
    send(server, a)
    v = View(server, tok)
    t = v.only_ticket()
    ta, ma = v.locate(a)
    assert ta["id"] == t["id"]
    # Found by its own id in thread_refs (the issue leaves open which of
    # the header values names that); not by the subject fallback, which
    # would also have matched here.
    assert ma.get("threaded_by") not in ("new", "duplicate", "subject"), \
        ma.get("threaded_by")
    assert [m["message_id"] for m in t["messages"]] == [
        a.msgid, b.msgid, c.msgid], "not ordered by Date:\n" + v.summary()
    assert requester(t) == ALICE[1]


def test_forward_by_colleague(server):
    """research/pitfalls.md 13: colleagues forward the requester's mail.
    Inline (Gmail's banner) or as message/rfc822 (Thunderbird), each is a
    new ticket from the forwarder: an address in a body is never trusted,
    and the attached message's own Message-ID is not the forward's. A
    forward that carries the ticket's token joins that ticket."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(120))
    send(server, first)
    inline = mails.forward_inline(first, CAROL, [SUPPORT], when=ago(60),
                                  text="Can you have a look? Alice sits "
                                       "next to me.")
    send(server, inline)
    attached = mails.forward_attached(first, DAVE, [SUPPORT], when=ago(50),
                                      text="Forwarding as attachment, the "
                                           "headers may help.")
    send(server, attached)

    v = View(server, tok)
    v.expect_tickets(3)
    t = v.ticket_of(first)
    assert len(t["messages"]) == 1, v.summary()
    t_inline = assert_new(v, inline, others=[t])
    t_att = assert_new(v, attached, others=[t, t_inline])
    assert requester(t) == ALICE[1]
    assert requester(t_inline) == CAROL[1]
    assert requester(t_att) == DAVE[1]

    # "...unless it carries a token": to the ticket's reply address.
    addr = reply_address(t)
    tokened = mails.forward_inline(first, CAROL, [addr], when=ago(40),
                                   text="Adding my notes to your ticket.")
    send(server, tokened, rcpts=[addr])
    v = View(server, tok)
    v.expect_tickets(3)
    assert_joined(v, tokened, t, "token")
    assert requester(v.ticket_of(first)) == ALICE[1]


def test_reply_all_with_cc(server):
    """research/pitfalls.md 4 and 7: a Cc'd colleague's reply-all joins
    as a participant and does not take over the requester; a stranger who
    knows the Message-ID joins only as unverified."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        cc=[BOB], when=ago(120))
    send(server, first)
    reply_all = mails.gmail(BOB, [ALICE], cc=[SUPPORT], reply_to=first,
                            when=ago(60),
                            text="Same here, the one on floor 3 is also "
                                 "offline.\n")
    send(server, reply_all)
    stranger = mails.gmail(MALLORY, [SUPPORT], reply_to=first, when=ago(30),
                           text="Please send the invoice to me instead.\n")
    send(server, stranger)

    v = View(server, tok)
    t = v.only_ticket()
    m = assert_joined(v, reply_all, t, "in_reply_to")
    assert not m.get("unverified"), "a Cc'd participant is verified"
    ms = assert_joined(v, stranger, t, "in_reply_to")
    assert ms.get("unverified") is True, ms
    assert requester(t) == ALICE[1]
    assert len(t["messages"]) == 3
    assert [x["id"] for x in list_tickets(
        server, tok, requester=ALICE[1])] == [t["id"]]
    assert list_tickets(server, tok, requester=BOB[1]) == []
    assert list_tickets(server, tok, requester=MALLORY[1]) == []


def test_reply_to_ticket_token_address(server):
    """research/pitfalls.md 2 and 7: the reply goes to the ticket's token
    address (Reply-To of the agent's answer) and names only an id the relay
    rewrote: the token places it. A token whose MAC does not verify is
    ignored (a new ticket), and a token never works in another tenant.
    Depends on the reply_address ASSUMPTION (see reply_address())."""
    tok = server.token()
    gtok = server.token(tenant="globex")
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(240))
    send(server, first)
    t = View(server, tok).only_ticket()
    addr = reply_address(t)
    parts = TOKEN_ADDR.match(addr)

    rewritten = ("<0102018f3c2a1b4d-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-"
                 "000000@eu-west-1.amazonses.com>")
    reply = mails.gmail(ALICE, [addr], when=ago(60),
                        subject="Re: Your request has been received",
                        text="Thanks, restarting the spooler fixed it.\n")
    reply = reply.replace("In-Reply-To", rewritten).replace(
        "References", rewritten)
    send(server, reply, rcpts=[addr])
    v = View(server, tok)
    t = v.only_ticket()
    assert_joined(v, reply, t, "token")
    assert requester(t) == ALICE[1]

    # One character of the MAC changed: not a token, so a new ticket.
    mac = parts["mac"]
    forged_mac = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    forged_addr = "%s+t%s.%s@%s" % (parts["base"], parts["number"],
                                    forged_mac, parts["domain"])
    forged = mails.gmail(ALICE, [forged_addr], "Toner order", when=ago(30),
                         text="Please order two black toner cartridges.\n")
    send(server, forged, rcpts=[forged_addr])
    v = View(server, tok)
    v.expect_tickets(2)
    assert_new(v, forged, others=[t])
    assert len(v.ticket_of(first)["messages"]) == 2

    # The same token sent to the other tenant, which has a ticket with the
    # same number: the MAC binds the tenant, so it opens a new one there.
    welcome = mails.gmail(DAVE, [GLOBEX], "Welcome", "Hello globex.\n",
                          when=ago(20))
    send(server, welcome, rcpts=[GLOBEX])
    g1 = View(server, gtok).only_ticket()
    assert g1["number"] == int(parts["number"]), (g1["number"], addr)
    cross_addr = "anyone+t%s.%s@globex.test" % (parts["number"], mac)
    cross = mails.gmail(ALICE, [cross_addr], "Re: Welcome", when=ago(10),
                        text="Is this the right ticket?\n")
    send(server, cross, rcpts=[cross_addr])
    gv = View(server, gtok)
    gv.expect_tickets(2)
    assert_new(gv, cross, others=[g1])
    View(server, tok).expect_tickets(2)


def test_same_message_twice_over_smtp_and_once_over_webhook(server):
    """research/pitfalls.md 8: one message, three arrivals: SMTP, SMTP again
    (To billing, Cc support: two inboxes of one tenant), and the provider
    webhook. One message, one ticket; every arrival acknowledged as
    success; the duplicates counted."""
    tok = server.token()
    dup_before = metrics(server).get("mailroom_duplicates_total", 0)
    mail = mails.gmail(ALICE, ["help+billing@acme.test"], "Invoice 2291 "
                       "paid twice", "Hello,\n\nwe paid invoice 2291 twice "
                       "by mistake. Please refund one payment.\n",
                       cc=[SUPPORT], when=ago(30))
    send(server, mail, rcpts=[SUPPORT])
    send(server, mail, rcpts=["help+billing@acme.test", SUPPORT])
    event = json.dumps({
        "message_id": mail.mid, "in_reply_to": None,
        "from": {"email": ALICE[1], "name": ALICE[0]},
        "to": [{"email": "help+billing@acme.test", "name": ""}],
        "cc": [{"email": SUPPORT, "name": ""}],
        "subject": mail.subject, "text": mail.text,
        "html": None, "headers": {}, "attachments": [],
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }).encode()
    st, _, body = server.http_call(
        "POST", "/inbox/webhook", event, None,
        {"Content-Type": "application/json",
         "X-Email-Signature": sign(event)})
    assert st == 204, body
    settle(server)

    v = View(server, tok)
    t = v.only_ticket()
    assert [m["message_id"] for m in t["messages"]] == [mail.msgid]
    assert_new(v, mail)
    assert requester(t) == ALICE[1]
    dup = metrics(server).get("mailroom_duplicates_total", 0) - dup_before
    assert dup >= 2, "duplicates counted: %s" % dup


def test_same_message_id_in_two_tenants(server):
    """Idempotency is per tenant: the same message to acme and globex makes
    one ticket in each, and a reply to globex stays in globex."""
    acme = server.token()
    globex = server.token(tenant="globex")
    mail = mails.gmail(ALICE, [SUPPORT, GLOBEX], "Printer offline", PRINTER,
                       when=ago(60))
    send(server, mail, rcpts=[SUPPORT, GLOBEX])
    va, vg = View(server, acme), View(server, globex)
    ta, tg = va.only_ticket(), vg.only_ticket()
    assert_new(va, mail)
    assert_new(vg, mail)
    reply = mails.gmail(ALICE, [GLOBEX], reply_to=mail, when=ago(10),
                        text="Globex: did you get this?\n")
    send(server, reply, rcpts=[GLOBEX])
    va, vg = View(server, acme), View(server, globex)
    assert_joined(vg, reply, vg.only_ticket(), "in_reply_to")
    assert vg.only_ticket()["id"] == tg["id"]
    assert va.only_ticket()["id"] == ta["id"]
    assert [m["message_id"] for m in va.only_ticket()["messages"]] == [
        mail.msgid]


def test_forged_in_reply_to_naming_another_tenants_message(server):
    """research/pitfalls.md 7: In-Reply-To and References naming acme
    messages, sent to globex, by a stranger and by the requester herself
    with the same subject: never joins across tenants.

    Each globex message names a different acme message: within globex,
    thread_refs rightly remembers every id a stored message referenced,
    so a second mail naming the same id would join the first one's globex
    ticket, which is not what this scenario is about."""
    acme = server.token()
    globex = server.token(tenant="globex")
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(120))
    send(server, first)
    follow = mails.gmail(ALICE, [SUPPORT], reply_to=first, when=ago(90),
                         text="It shows error 49.4C02 again.\n")
    send(server, follow)
    forged = mails.gmail(MALLORY, [GLOBEX], reply_to=first, when=ago(30),
                         text="Please send me the printer's admin "
                              "password.\n")
    assert forged.header("In-Reply-To") == first.mid
    send(server, forged, rcpts=[GLOBEX])
    same_person = mails.gmail(ALICE, [GLOBEX], reply_to=follow,
                              when=ago(20), text="Wrong address, sorry.\n")
    same_person = same_person.replace("References", follow.mid)
    assert same_person.subject == "Re: Printer offline"
    send(server, same_person, rcpts=[GLOBEX])

    va, vg = View(server, acme), View(server, globex)
    assert [m["message_id"] for m in va.only_ticket()["messages"]] == [
        first.msgid, follow.msgid]
    assert forged.msgid not in va.hits and same_person.msgid not in va.hits
    assert first.msgid not in vg.hits and follow.msgid not in vg.hits
    vg.expect_tickets(2)
    t1 = assert_new(vg, forged)
    t2 = assert_new(vg, same_person, others=[t1])
    assert requester(t1) == MALLORY[1] and requester(t2) == ALICE[1]


def test_out_of_office_to_solved_ticket_stays_solved(server):
    """Auto-replies (Exchange "Automatic reply:" and a Sieve vacation reply
    whose subject looks human) join the solved ticket, classified
    autoreply, and do not reopen it; the requester's real reply does.

    The auto-replies answer the ticket's first message: they stand for the
    answer to an agent's reply, which cannot be sent before outbound mail
    exists."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        when=ago(600))
    send(server, first)
    t = View(server, tok).only_ticket()
    set_status_in_db(server, t["id"], "solved")
    assert ticket_detail(server, tok, t["id"])["status"] == "solved"

    exchange = mails.out_of_office(first, ALICE, style="exchange",
                                   to=[("Acme Support", SUPPORT)],
                                   when=ago(300))
    send(server, exchange)
    vacation = mails.out_of_office(first, ALICE, style="vacation",
                                   to=[("Acme Support", SUPPORT)],
                                   when=ago(200))
    assert vacation.subject == "Re: Printer offline"
    send(server, vacation)
    v = View(server, tok)
    t = v.only_ticket()
    for auto in (exchange, vacation):
        m = v.message(auto)
        assert v.ticket_of(auto)["id"] == t["id"], v.summary()
        assert m.get("threaded_by") == "in_reply_to", m.get("threaded_by")
        assert auto_kind(m) == "autoreply", m.get("auto")
        assert (m.get("auto") or {}).get("reason"), m.get("auto")
    assert t["status"] == "solved", "an auto-reply reopened the ticket"
    assert [x["id"] for x in list_tickets(server, tok, status="solved")] == [
        t["id"]]
    assert requester(t) == ALICE[1]

    human = mails.gmail(ALICE, [SUPPORT], reply_to=first, when=ago(60),
                        text="Back from holiday: it is broken again.\n")
    send(server, human)
    v = View(server, tok)
    t = v.only_ticket()
    m = assert_joined(v, human, t, "in_reply_to")
    assert auto_kind(m) == "none", m.get("auto")
    assert t["status"] == "open", "a human reply reopens a solved ticket"
    assert list_tickets(server, tok, status="solved") == []


def test_bounce_joins_the_ticket_of_the_bounced_message(server):
    """A Postfix DSN (null return path, no In-Reply-To, the original's
    Message-ID only in text/rfc822-headers) joins the ticket of the message
    it reports on, as a bounce; it opens no ticket and changes neither the
    requester nor the status. The bounced message stands for an agent's
    reply to a Cc'd colleague, which cannot be sent before outbound mail
    exists."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Printer offline", PRINTER,
                        cc=[BOB], when=ago(120))
    send(server, first)
    t0 = View(server, tok).only_ticket()
    dsn = mails.bounce(first, failed_rcpt=BOB[1], when=ago(100))
    assert dsn.envelope_from == "" and dsn.header("In-Reply-To") is None
    send(server, dsn)
    v = View(server, tok)
    t = v.only_ticket()
    tb, mb = v.locate(dsn)
    assert tb["id"] == t["id"] == t0["id"]
    assert auto_kind(mb) == "bounce", mb.get("auto")
    assert mb.get("threaded_by") != "new", mb.get("threaded_by")
    assert requester(t) == ALICE[1]
    assert t["status"] == t0["status"]
    assert len(t["messages"]) == 2


def test_mailing_list_copy(server):
    """The requester writes to a list and Cc's support; support is also
    subscribed. The list's copy (same Message-ID, [users] tag, From
    rewritten to the list) is a duplicate; her follow-up that arrives only
    through the list joins by In-Reply-To, classified list, and the list
    address never becomes the requester."""
    tok = server.token()
    first = mails.gmail(ALICE, ["users@lists.customer.test"],
                        "Printer offline", PRINTER, cc=[SUPPORT],
                        when=ago(120))
    send(server, first)
    copy = mails.list_copy(first)
    assert copy.msgid == first.msgid and copy.header("List-Id")
    send(server, copy)
    v = View(server, tok)
    t = v.only_ticket()
    assert [m["message_id"] for m in t["messages"]] == [first.msgid]

    follow = mails.gmail(ALICE, ["users@lists.customer.test"],
                         reply_to=first, when=ago(30),
                         text="Update for everyone: it works again after "
                              "a firmware update.\n")
    follow_copy = mails.list_copy(follow)
    assert follow_copy.subject == "Re: [users] Printer offline"
    send(server, follow_copy)
    v = View(server, tok)
    t = v.only_ticket()
    m = assert_joined(v, follow_copy, t, "in_reply_to")
    assert auto_kind(m) == "list", m.get("auto")
    assert auto_kind(v.message(first)) == "none"
    assert requester(t) == ALICE[1]
    assert len(t["messages"]) == 2


# ---- idempotency under load (issue 4, Proof) --------------------------------

LOAD_SRC = os.path.join(ROOT, "bench", "smtp_load.c")
LOAD_ID = re.compile(r"load-\d+-\d+-\d+@bench\.mailroom\.invalid")


def build_load(tmp):
    exe = os.path.join(tmp, "smtp_load")
    subprocess.run(["cc", "-O2", "-pthread", "-o", exe, LOAD_SRC],
                   check=True, timeout=120)
    return exe


def load_with_kills(s, exe, acked_file, kills, rng, total, conns, seed):
    """One smtp_load run while the server is killed -9 and restarted
    `kills` times -> its JSON summary."""
    load = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(s.smtp), "--connections",
         str(conns), "--count", str(total), "--timeout-s", "240",
         "--rcpt", SUPPORT, "--acked", acked_file, "--seed", str(seed)],
        stdout=subprocess.PIPE)
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 1.5))
            s.kill9()
            time.sleep(rng.uniform(0.0, 0.3))
            s.start()
        out, _ = load.communicate(timeout=300)
    finally:
        if load.poll() is None:
            load.kill()
    return json.loads(out.decode())


def read_acked(path):
    with open(path) as f:
        return {l.strip().strip("<>") for l in f if l.strip()}


def load_outcome(data_dir):
    """Reads the stored load messages back from the database.

    -> (rows per load id, conversations' ticket sets, tickets, empty
    tickets). A conversation is what smtp_load threads together
    (In-Reply-To and References of its replies), joined transitively, so
    a reply whose parent was lost still belongs to it."""
    db = sqlite3.connect(os.path.join(data_dir, "mailroom.db"), timeout=30)
    db.row_factory = sqlite3.Row
    try:
        msgs = db.execute("SELECT * FROM messages").fetchall()
        tickets = [r["id"] for r in db.execute("SELECT id FROM tickets")]
    finally:
        db.close()
    rows = {}
    parent = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    ticket_of = {}
    for r in msgs:
        keys = r.keys()
        m = LOAD_ID.search(r["message_id"] or "")
        if not m:
            continue
        mid = m.group(0)
        rows.setdefault(mid, []).append(r["ticket_id"])
        ticket_of.setdefault(mid, set()).add(r["ticket_id"])
        linked = str(r["in_reply_to"] or "") if "in_reply_to" in keys else ""
        if "event_json" in keys and r["event_json"]:
            ev = json.loads(r["event_json"])
            linked += " %s %s" % (ev.get("in_reply_to"),
                                  json.dumps(ev.get("references")))
        for other in LOAD_ID.findall(linked):
            union(mid, other)
    convs = {}
    for mid, tids in ticket_of.items():
        convs.setdefault(find(mid), set()).update(tids)
    used = {t for tids in ticket_of.values() for t in tids}
    empty = [t for t in tickets if t not in used]
    return rows, list(convs.values()), tickets, empty


@load_test
def test_kill9_under_load_every_message_delivered_twice(tmpdir_path):
    """The intake crash test with every message delivered a second time:
    smtp_load runs twice with the same --seed (so the same Message-IDs),
    the server killed -9 under each run. Afterwards: nothing acknowledged
    is missing, no message is stored twice, and no conversation has more
    than one ticket. Printed per 1,000 deliveries.

    The second run's copies differ from the first's in Date and Received
    (smtp_load stamps the time), as a message relayed again does; they
    are the same message by Message-ID (issue 4: duplicate)."""
    total, conns, kills, seed = 5000, 8, 3, 7
    exe = build_load(tmpdir_path)
    s = Server(tmpdir_path).start()
    rng = random.Random(int(os.environ.get("MR_CRASH_SEED", "1")))
    acked_files = [os.path.join(tmpdir_path, "acked-%d.txt" % i)
                   for i in (1, 2)]
    summaries = [load_with_kills(s, exe, f, kills, rng, total, conns, seed)
                 for f in acked_files]
    end = time.time() + 120
    while time.time() < end:
        g = metrics(s)
        if g.get("mailroom_queue_ready", 1) + g.get(
                "mailroom_queue_leased", 1) == 0:
            break
        time.sleep(0.2)
    assert s.stop() == 0

    acked1, acked2 = (read_acked(f) for f in acked_files)
    twice = acked1 & acked2
    deliveries = len(acked1) + len(acked2)
    rows, convs, tickets, empty = load_outcome(s.data)
    missing = sorted((acked1 | acked2) - set(rows))
    dup_messages = sum(len(v) - 1 for v in rows.values())
    split = sum(len(c) - 1 for c in convs)
    dup_tickets = split + len(empty)
    per_k = 1000.0 / max(deliveries, 1)
    print("\nidempotency under load: %d + %d sent, %d + %d acked (250), "
          "%d ids acked in both runs, %d stored messages, %d tickets for "
          "%d conversations, %d kills; %d missing, %d duplicate messages "
          "(%.2f per 1,000 deliveries), %d duplicate tickets (%.2f per "
          "1,000: %d conversations split, %d empty tickets)" % (
              summaries[0].get("sent", 0), summaries[1].get("sent", 0),
              len(acked1), len(acked2), len(twice), len(rows), len(tickets),
              len(convs), 2 * kills, len(missing), dup_messages,
              dup_messages * per_k, dup_tickets, dup_tickets * per_k, split,
              len(empty)))
    assert len(twice) > total // 4, (len(twice), summaries)
    assert not missing, missing[:10]
    assert dup_messages == 0, [(m, t) for m, t in rows.items()
                               if len(t) > 1][:10]
    assert dup_tickets == 0, (split, empty[:10])


def test_reused_message_id_keeps_both(server):
    """research/pitfalls.md 9: a scanner sends every scan with the same
    Message-ID. The second scan is new mail, not a duplicate: both are
    stored (the second under a suffixed id, the reuse noted), while a plain
    resend of the first is still a duplicate."""
    tok = server.token()
    first = mails.gmail(ALICE, [SUPPORT], "Scan from MFP-3", "Page 1.\n",
                        when=ago(300))
    second = first.replace("Subject", "Scan from MFP-3 (2)").replace(
        "Date", mails.gmail(ALICE, [SUPPORT], "x", "x", when=ago(60))
        .header("Date"))
    send(server, first)
    send(server, first)
    send(server, second)
    v = View(server, tok)
    stored = [m for t in v.tickets for m in t["messages"]]
    ids = sorted(m["message_id"] for m in stored)
    assert len(stored) == 2, v.summary()
    assert ids[0] == first.msgid and ids[1].startswith(first.msgid + "#"), ids
    reused = [m for m in stored if m["message_id"] != first.msgid][0]
    assert "reused" in (reused.get("thread_detail") or ""), reused
