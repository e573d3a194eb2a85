"""Automatic acknowledgements over SMTP (docs/outbound.md, issue 6): a
new ticket from a human gets exactly one acknowledgement through the
configured relay (a loopback SMTP sink here), with RFC 3834's headers and
the original's Message-ID in In-Reply-To; a second message inside the
window, automatic mail (out-of-office, bounce, list, null sender) and a
reply to a ticket get none; two mailroom instances that acknowledge
each other through each other's SMTP exchange at most one message each;
and a smarthost that wants STARTTLS and AUTH PLAIN (submission, port 587)
gets the acknowledgement with the right credentials over TLS, while bad
credentials (535) fail the mail at once without the password in the log."""

import email
import email.policy
import os
import smtplib
import base64
import socket
import sqlite3
import ssl
import threading
import time

import pytest

from conftest import CERTS, Server, message


class SmtpSink:
    """A loopback SMTP server that accepts everything and keeps it:
    messages is a list of (mail_from, [rcpt], bytes). With tls, it offers
    STARTTLS (tests/certs); with users ({name: password}) it offers AUTH
    PLAIN once TLS is up and refuses MAIL before a good AUTH; auths lists
    (user, password, under_tls) of every AUTH it was given."""

    def __init__(self, tls=False, users=None):
        self.tls = None
        if tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(os.path.join(CERTS, "cert.pem"),
                                     os.path.join(CERTS, "key.pem"))
        self.users = users
        self.auths = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 sink.test ESMTP\r\n")
        mail_from, rcpts = None, []
        under_tls, authed = False, self.users is None
        try:
            while True:
                line = f.readline(4096)
                if not line:
                    break
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    caps = [b"sink.test", b"8BITMIME"]
                    if self.tls and not under_tls:
                        caps.append(b"STARTTLS")
                    if self.users is not None and under_tls:
                        caps.append(b"AUTH PLAIN")
                    conn.sendall(b"".join(
                        b"250%s%s\r\n" % (b" " if i == len(caps) - 1
                                           else b"-", c)
                        for i, c in enumerate(caps)))
                elif cmd.upper() == "STARTTLS" and self.tls and not under_tls:
                    conn.sendall(b"220 2.0.0 ready\r\n")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    under_tls = True
                elif verb == "AUTH" and self.users is not None:
                    parts = cmd.split(" ")
                    raw = base64.b64decode(parts[2]) if len(parts) == 3 \
                        else b""
                    _, user, password = (raw.split(b"\0") + [b"", b""])[:3]
                    user, password = user.decode(), password.decode()
                    self.auths.append((parts[1].upper(), user, password,
                                       under_tls))
                    if self.users.get(user) == password and \
                            parts[1].upper() == "PLAIN":
                        authed = True
                        conn.sendall(b"235 2.7.0 ok\r\n")
                    else:
                        conn.sendall(b"535 5.7.8 Authentication credentials"
                                     b" invalid\r\n")
                elif verb == "MAIL" and not authed:
                    conn.sendall(b"530 5.7.0 Authentication required\r\n")
                elif verb == "MAIL":
                    mail_from = cmd[cmd.index("<") + 1:cmd.rindex(">")]
                    rcpts = []
                    conn.sendall(b"250 ok\r\n")
                elif verb == "RCPT":
                    rcpts.append(cmd[cmd.index("<") + 1:cmd.rindex(">")])
                    conn.sendall(b"250 ok\r\n")
                elif verb == "DATA":
                    conn.sendall(b"354 go\r\n")
                    data = []
                    for dl in f:
                        if dl == b".\r\n":
                            break
                        data.append(dl[1:] if dl.startswith(b"..") else dl)
                    with self.lock:
                        self.messages.append((mail_from, rcpts,
                                              b"".join(data)))
                    conn.sendall(b"250 queued\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")
        finally:
            conn.close()

    def wait(self, count, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)

    def close(self):
        self.stopping = True
        self.sock.close()


RULES = """\
auto_ack_window: 1h
templates:
  received:
    subject: "[#{{ticket.number}}] Received: {{subject}}"
    text: |
      Hello {{from.name}},

      we have your message "{{subject}}" as ticket #{{ticket.number}}.
      .
      A line with a dot above; Grüße, the {{tenant}} team
tenants:
  acme:
    - name: Acknowledge
      if: {new_ticket: true}
      then:
        auto_acknowledge: {template: received}
  globex:
    - name: AcknowledgeEverything
      then:
        auto_acknowledge: {template: plain, text: "Got it: {{subject}}"}
"""


def configure(srv, relay_port, sender, extra=""):
    srv.rules = os.path.join(srv.tmp, "rules.yaml")
    with open(srv.rules, "w") as f:
        f.write(RULES)
    with open(srv.config, "a") as f:
        f.write("rules: %s\n"
                "outbound:\n"
                "  smtp: \"127.0.0.1:%d\"\n"
                "  helo: mailroom.test\n"
                "  from: \"%s\"\n"
                "  timeout: 5s\n"
                "  backoff_base: 200ms\n%s" % (srv.rules, relay_port, sender,
                                               extra))


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.close()


@pytest.fixture
def srv(tmpdir_path, sink):
    s = Server(tmpdir_path)
    configure(s, sink.port, "Acme Support <support@acme.test>")
    s.start()
    yield s
    rc = s.stop()
    assert rc in (0, None), open(s.log).read()


def send(port, raw, rcpt="support@acme.test", mail_from="alice@customer.test"):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as c:
        c.ehlo("mail.customer.test")
        refused = c.sendmail(mail_from, [rcpt], raw)
    assert not refused, refused


def outbound_rows(srv):
    db = sqlite3.connect(os.path.join(srv.data, "mailroom.db"), timeout=10)
    try:
        return db.execute("SELECT tenant, rcpt_to, state, attempts"
                          " FROM outbound_mail ORDER BY id").fetchall()
    finally:
        db.close()


def test_new_ticket_gets_one_ack_and_window_holds(srv, sink):
    token = srv.token()
    send(srv.smtp, message(subject="Printer on fire",
                           msgid="<first@customer.test>"))
    got = sink.wait(1)
    assert len(got) == 1
    mail_from, rcpts, raw = got[0]
    assert mail_from == ""  # RFC 3834 3.3: the null sender
    assert rcpts == ["alice@customer.test"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["In-Reply-To"] == "<first@customer.test>"
    assert msg["References"] == "<first@customer.test>"
    assert msg["To"].addresses[0].addr_spec == "alice@customer.test"
    assert msg["From"].addresses[0].addr_spec == "support@acme.test"
    assert msg["From"].addresses[0].display_name == "Acme Support"
    assert msg["Message-ID"].startswith("<ack.")
    assert msg["Date"]
    tickets = srv.wait_stored(token, 1)
    number = tickets[0]["number"]
    assert msg["Subject"] == "[#%d] Received: Printer on fire" % number
    assert msg.get_content_type() == "text/plain"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    body = msg.get_content().replace("\r\n", "\n")
    assert "Hello Alice," in body
    assert "as ticket #%d." % number in body
    assert "\n.\n" in body and "Grüße, the acme team" in body

    # Inside the window: a second new ticket, no second acknowledgement.
    send(srv.smtp, message(subject="Also the scanner"))
    assert len(srv.wait_stored(token, 2)) == 2
    time.sleep(1.5)
    assert len(sink.messages) == 1
    assert [r[2] for r in outbound_rows(srv)] == ["sent"]

    # Another sender, a subject that is not ASCII: RFC 2047 on the wire.
    send(srv.smtp, message(subject="Grüße aus Köln",
                           frm="Jörg <joerg@customer.test>"),
         mail_from="joerg@customer.test")
    got = sink.wait(2)
    assert len(got) == 2
    raw = got[1][2]
    subject_line = [l for l in raw.split(b"\r\n")
                    if l.startswith(b"Subject:")][0]
    assert b"=?utf-8?B?" in subject_line
    assert max(len(l) for l in raw.split(b"\r\n")) <= 78
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"].endswith("Received: Grüße aus Köln")
    assert "Hello Jörg," in msg.get_content()

    # The customer answers the acknowledgement: it joins the ticket.
    ack_id = email.message_from_bytes(got[0][2])["Message-ID"]
    send(srv.smtp, message(subject="Re: whatever", msgid="<re1@customer.test>",
                           extra="In-Reply-To: %s\r\n" % ack_id))
    time.sleep(1.0)
    assert len(srv.wait_stored(token, 3)) == 3
    status, t = srv.json_call("GET", "/api/v1/tickets/%d" % tickets[0]["id"],
                              token)
    assert status == 200
    assert len(t["messages"]) == 2


AUTOMATIC = [
    # out-of-office, RFC 3834
    ("ooo1@customer.test", "ooo1@customer.test",
     "Auto-Submitted: auto-replied\r\n", "Out of office"),
    # Exchange's out-of-office
    ("ooo2@customer.test", "ooo2@customer.test",
     "X-Auto-Response-Suppress: All\r\nX-Autoreply: yes\r\n",
     "Automatic reply: Printer"),
    # a list message
    ("list@lists.test", "list-bounces@lists.test",
     "List-Id: <news.lists.test>\r\nPrecedence: list\r\n", "Newsletter"),
    # a human-looking message with the null sender
    ("nobody@customer.test", "", "", "No return path"),
]


def test_automatic_mail_and_replies_get_none(srv, sink):
    token = srv.token()
    for frm, mail_from, extra, subject in AUTOMATIC:
        send(srv.smtp, message(subject=subject, frm=frm, extra=extra),
             mail_from=mail_from)
    # A bounce (with nothing of ours to match, so it opens no ticket).
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        b"To: support@acme.test\r\nSubject: Undelivered Mail Returned\r\n"
        b"Message-ID: <bounce1@mx.customer.test>\r\n"
        b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status;"
        b" boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        b"failed\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        b"Final-Recipient: rfc822; gone@customer.test\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--b1--\r\n")
    send(srv.smtp, bounce, mail_from="")
    # A human opens a ticket (one acknowledgement), then replies to it.
    send(srv.smtp, message(subject="Question", frm="carol@customer.test",
                           msgid="<q1@customer.test>"),
         mail_from="carol@customer.test")
    assert len(sink.wait(1)) == 1
    send(srv.smtp, message(subject="Re: Question", frm="carol@customer.test",
                           msgid="<q2@customer.test>",
                           extra="In-Reply-To: <q1@customer.test>\r\n"),
         mail_from="carol@customer.test")
    tickets = srv.wait_stored(token, 5)
    assert len(tickets) >= 5
    deadline = time.time() + 10
    while time.time() < deadline:
        status, t = srv.json_call(
            "GET", "/api/v1/tickets/%d" % [x for x in tickets
                                          if x["subject"] == "Question"][0]
            ["id"], token)
        if len(t["messages"]) == 2:
            break
        time.sleep(0.1)
    assert len(t["messages"]) == 2
    time.sleep(1.5)
    got = sink.messages
    assert [m[1] for m in got] == [["carol@customer.test"]], got
    assert [r[1] for r in outbound_rows(srv)] == ["carol@customer.test"]
    # The trail says why the others got none.
    trails = {}
    for x in srv.all_tickets(token):
        status, full = srv.json_call("GET", "/api/v1/tickets/%d" % x["id"],
                                     token)
        trails[x["subject"]] = [d["decision"] for d in full["applied_rules"]]
    assert "auto_ack_suppressed=autoreply" in trails["Out of office"]
    assert "auto_ack_suppressed=null_sender" in trails["No return path"]
    assert "auto_ack_suppressed=list" in trails["Newsletter"]


def test_two_instances_acknowledging_each_other_do_not_loop(tmpdir_path):
    a_dir = os.path.join(tmpdir_path, "a")
    b_dir = os.path.join(tmpdir_path, "b")
    os.makedirs(a_dir)
    os.makedirs(b_dir)
    a = Server(a_dir)
    b = Server(b_dir)
    # A relays to B's SMTP and B to A's: each one's acknowledgement is
    # mail to the other.
    configure(a, b.smtp, "Acme Support <support@acme.test>")
    configure(b, a.smtp, "Globex Help <help@globex.test>")
    a.start()
    b.start()
    try:
        ta, tb = a.token(), b.token(tenant="globex")
        # A human writes to A from an address that is B's inbox (a
        # forwarding rule, a misconfigured alias).
        send(a.smtp, message(subject="Loop me",
                             frm="Forwarder <help@globex.test>"),
             mail_from="help@globex.test")
        assert len(a.wait_stored(ta, 1)) == 1
        assert len(b.wait_stored(tb, 1)) == 1  # A's acknowledgement
        # Bounded wait for anything further to bounce around.
        time.sleep(4)
        a_tickets = a.all_tickets(ta)
        b_tickets = b.all_tickets(tb)
        a_msgs = sum(t["message_count"] for t in a_tickets
                     if "message_count" in t) or len(a_tickets)
        assert len(a_tickets) == 1 and len(b_tickets) == 1
        # A sent one message (to B); B sent none back to A.
        assert [r[1] for r in outbound_rows(a)] == ["help@globex.test"]
        assert outbound_rows(b) == []
        assert a_msgs == 1
        status, t = b.json_call("GET", "/api/v1/tickets/%d" %
                                b_tickets[0]["id"], tb)
        trail = [d["decision"] for d in t["applied_rules"]]
        assert "auto_ack_suppressed=autoreply" in trail or \
            "auto_ack_suppressed=null_sender" in trail, trail
    finally:
        for s in (a, b):
            rc = s.stop()
            assert rc in (0, None), open(s.log).read()


def outbound_errors(srv):
    db = sqlite3.connect(os.path.join(srv.data, "mailroom.db"), timeout=10)
    try:
        return db.execute("SELECT state, attempts, last_error"
                          " FROM outbound_mail ORDER BY id").fetchall()
    finally:
        db.close()


SMARTHOST = ("  tls: required\n"
             "  tls_ca: %s\n"
             "  username: helpdesk@acme.test\n"
             "  password_env: E2E_RELAY_PASSWORD\n"
             % os.path.join(CERTS, "cert.pem"))


def test_smarthost_with_starttls_and_auth(tmpdir_path, monkeypatch):
    """A provider's submission port: STARTTLS required, the certificate
    checked against tests/certs, AUTH PLAIN with the password from the
    environment; then the same relay with a wrong password."""
    password = "correct horse, battery staple"
    sink = SmtpSink(tls=True, users={"helpdesk@acme.test": password})
    monkeypatch.setenv("E2E_RELAY_PASSWORD", password)
    srv = Server(tmpdir_path)
    configure(srv, sink.port, "Acme Support <support@acme.test>", SMARTHOST)
    srv.start()
    try:
        send(srv.smtp, message(subject="Over TLS please",
                               msgid="<tls1@customer.test>"))
        got = sink.wait(1)
        assert len(got) == 1, open(srv.log).read()
        assert got[0][1] == ["alice@customer.test"]
        msg = email.message_from_bytes(got[0][2],
                                       policy=email.policy.default)
        assert msg["In-Reply-To"] == "<tls1@customer.test>"
        assert sink.auths == [("PLAIN", "helpdesk@acme.test", password,
                               True)]
        assert [r[0] for r in outbound_errors(srv)] == ["sent"]
    finally:
        rc = srv.stop()
        sink.close()
    assert rc in (0, None), open(srv.log).read()
    assert password not in open(srv.log).read()

    # The relay now refuses the credentials: failed at once (535 is not
    # fixed by waiting), the reply recorded, the password nowhere.
    sink = SmtpSink(tls=True, users={"helpdesk@acme.test": "rotated"})
    bad_dir = os.path.join(tmpdir_path, "bad")
    os.makedirs(bad_dir)
    srv = Server(bad_dir)
    configure(srv, sink.port, "Acme Support <support@acme.test>", SMARTHOST)
    srv.start()
    try:
        send(srv.smtp, message(subject="Wrong password",
                               msgid="<tls2@customer.test>"))
        deadline = time.time() + 15
        rows = []
        while time.time() < deadline:
            rows = outbound_errors(srv)
            if rows and rows[0][0] == "failed":
                break
            time.sleep(0.1)
        assert rows and rows[0][0] == "failed", (rows, open(srv.log).read())
        assert rows[0][1] == 1
        assert "535 5.7.8 Authentication credentials invalid" in rows[0][2]
        assert password not in rows[0][2]
        assert sink.messages == []
        assert [a[3] for a in sink.auths] == [True]
    finally:
        rc = srv.stop()
        sink.close()
    assert rc in (0, None), open(srv.log).read()
    log = open(srv.log).read()
    assert "mail failed permanently" in log
    assert password not in log
    assert base64.b64encode(b"\0helpdesk@acme.test\0" +
                            password.encode()).decode() not in log
