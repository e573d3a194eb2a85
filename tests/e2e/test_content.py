# SPDX-License-Identifier: Apache-2.0
"""The content stage end to end (issue 5, docs/content.md): what an agent
is shown of a message.

A real `mailroom serve` gets an HTML reply with a script, an event handler,
a javascript: link, a remote image, a cid: image and a quoted earlier
message; the API must show sanitized HTML (nothing executable left, the
cid: image pointed at /api/v1/inline/<sha256>, which serves the PNG, the
remote image a placeholder) and the visible reply without the quote. A
provider webhook event with only HTML gets the same treatment. Then the
stored sanitizer version is set back, and `mailroom content resanitize`
brings it and the event up to date, once.
"""
import email.message
import email.policy
import hashlib
import hmac
import json
import os
import sqlite3
import time

from conftest import WEBHOOK_SECRET, Server

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")

HTML = (
    '<div dir="ltr">Thanks, the <b>export</b> works now.'
    '<img src="x" onerror="alert(1)">'
    '<a href="javascript:alert(2)">click</a>'
    '<script>alert(3)</script>'
    '<img src="https://tracker.example/pixel.gif" alt="pixel">'
    '<p>Logo: <img src="cid:logo@customer.test" alt="logo"></p></div>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Thu, '
    'Nov 26, 2026 at 9:00 AM Support &lt;support@acme.test&gt; wrote:<br>'
    '</div><blockquote class="gmail_quote">Did the export work?'
    '</blockquote></div>')

TEXT = ("Thanks, the export works now.\n\n"
        "On Thu, Nov 26, 2026 at 9:00 AM Support <support@acme.test> wrote:\n"
        "> Did the export work?\n")


def html_mail(subject):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Alice <alice@customer.test>"
    m["To"] = "support@acme.test"
    m["Subject"] = subject
    m["Message-ID"] = "<%s@customer.test>" % os.urandom(8).hex()
    m["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    m.set_content(TEXT)
    m.add_alternative(HTML, subtype="html")
    html_part = m.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png",
                          cid="<logo@customer.test>", filename="logo.png")
    return m.as_bytes()


def message_of(srv, tok, subject, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        for t in srv.all_tickets(tok):
            if t["subject"] == subject:
                st, doc = srv.json_call("GET", "/api/v1/tickets/%d" % t["id"],
                                        tok)
                assert st == 200, doc
                return doc["messages"][0]
        time.sleep(0.1)
    raise AssertionError("no ticket %r:\n%s" % (subject, open(srv.log).read()))


def assert_nothing_runs(html):
    low = html.lower()
    for bad in ("<script", "onerror", "javascript:", "alert("):
        assert bad not in low, (bad, html)


def test_html_sanitized_and_visible_reply(server):
    tok = server.token(role="admin")
    ing = server.token(role="ingest")
    st, _, body = server.http_call("POST", "/api/v1/messages",
                                   html_mail("export works"), ing,
                                   {"Content-Type": "message/rfc822"})
    assert st == 202, body
    msg = message_of(server, tok, "export works")
    hs = msg["html_sanitized"]
    assert hs and "export" in hs, msg
    assert_nothing_runs(hs)
    sha = hashlib.sha256(PNG).hexdigest()
    assert "/api/v1/inline/%s" % sha in hs, hs
    assert "cid:" not in hs
    # The remote image keeps its URL for an opt-in, but is not loaded.
    assert "tracker.example/pixel.gif" in hs
    assert ' src="https://tracker.example' not in hs
    assert 'data-mr-remote-src="https://tracker.example/pixel.gif"' in hs
    st, hdrs, data = server.http_call("GET", "/api/v1/inline/" + sha,
                                      token=tok)
    assert st == 200 and data == PNG
    assert hdrs["Content-Type"] == "image/png"
    # The visible reply: the customer's words, not the quote.
    assert "export works now" in msg["stripped_text"]
    assert "Did the export work" not in msg["stripped_text"]


def sign(body):
    return hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_provider_event_gets_the_same_treatment(server):
    tok = server.token(role="admin")
    event = {"message_id": "<prov-1@customer.test>",
             "from": "Alice <alice@customer.test>",
             "to": ["support@acme.test"], "subject": "provider html",
             "html": HTML, "headers": {}, "attachments": []}
    body = json.dumps(event).encode()
    st, _, resp = server.http_call("POST", "/inbox/webhook", body, None,
                                   {"Content-Type": "application/json",
                                    "X-Email-Signature": sign(body)})
    assert st == 204, resp
    msg = message_of(server, tok, "provider html")
    assert_nothing_runs(msg["html_sanitized"])
    assert "export works now" in msg["text"]
    assert "export works now" in msg["stripped_text"]
    assert "Did the export work" not in msg["stripped_text"]


def test_resanitize_brings_old_bodies_up_to_date(tmpdir_path):
    s = Server(tmpdir_path).start()
    try:
        tok = s.token(role="admin")
        ing = s.token(role="ingest")
        st, _, _ = s.http_call("POST", "/api/v1/messages",
                               html_mail("old rules"), ing,
                               {"Content-Type": "message/rfc822"})
        assert st == 202
        before = message_of(s, tok, "old rules")["html_sanitized"]
    finally:
        assert s.stop() == 0
    db = sqlite3.connect(os.path.join(s.data, "mailroom.db"))
    # As if an older sanitizer had made it, and differently.
    db.execute("UPDATE messages SET sanitizer_version = 0, html_sanitized ="
               " 'stale', event_json = json_set(event_json,"
               " '$.html_sanitized', 'stale')")
    db.commit()
    db.close()
    r = s.cli("content", "resanitize")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("1 message(s) sanitized again"), r
    db = sqlite3.connect(os.path.join(s.data, "mailroom.db"))
    row = db.execute("SELECT sanitizer_version, html_sanitized,"
                     " json_extract(event_json, '$.html_sanitized')"
                     " FROM messages").fetchone()
    db.close()
    assert row[0] >= 1 and row[1] == before and row[2] == before, row
    # Nothing is stale any more: a second run does nothing.
    r = s.cli("content", "resanitize")
    assert r.returncode == 0 and r.stdout.decode().startswith("0 message(s)")
