# SPDX-License-Identifier: Apache-2.0
"""Attachments that cannot hurt an agent (issue 5, docs/attachments.md).

A real `mailroom serve` gets mail with a disguised executable
(invoice.pdf.exe, MZ bytes), a bidi-override name, an HTML page, a PNG
shown inline by cid, a PNG that is really a PDF, a normal PDF with a
non-ASCII name, and (in other messages) attachments over the per-attachment
and per-message limits. The API must show what libmagic found and what the
policy decided; downloads must carry RFC 6266 names, nosniff and a CSP
sandbox; blocked files are for admins only; the inline route serves the
raster image and nothing else; an over-limit attachment is a truncated
record with a warning, and its message is still a ticket.
"""
import email.message
import email.policy
import hashlib
import json
import os
import random
import time
import urllib.parse

import pytest

from conftest import Server

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")
PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
# A DOS/PE header: what libmagic calls application/x-dosexec.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
HTML = (b"<!DOCTYPE html>\n<html><head><title>Pay now</title></head><body>"
        b"<script>fetch('/api/v1/tickets')</script></body></html>\n")
BIDI_NAME = "photo\u202egnp.txt"  # shows as "phototxt.png"

LIMITS = """\
attachments:
  max_attachment_bytes: 64KiB
  max_message_attachment_bytes: 120KiB
"""


@pytest.fixture
def srv(tmpdir_path):
    s = Server(tmpdir_path)
    with open(s.config, "a") as f:
        f.write(LIMITS)
    s.start()
    yield s
    rc = s.stop()
    assert rc in (0, None), open(s.log).read()


def mail(subject, parts, html_cid=None):
    """parts: (filename, maintype/subtype, bytes, disposition, cid)."""
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Alice <alice@customer.test>"
    m["To"] = "support@acme.test"
    m["Subject"] = subject
    m["Message-ID"] = "<%s@customer.test>" % os.urandom(8).hex()
    m["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    m.set_content("See attached.\n")
    if html_cid:
        m.add_alternative('<p>Logo: <img src="cid:%s"></p>' % html_cid,
                          subtype="html")
    for name, ctype, data, disp, cid in parts:
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype,
                         filename=name, disposition=disp, cid=cid)
    return m.as_bytes()


def ingest(srv, raw):
    tok = srv.token(role="ingest")
    st, _, body = srv.http_call("POST", "/api/v1/messages", raw, tok,
                                {"Content-Type": "message/rfc822"})
    assert st == 202, body


def ticket_by_subject(srv, reader, subject, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        for t in srv.all_tickets(reader):
            if t["subject"] == subject:
                st, doc = srv.json_call("GET", "/api/v1/tickets/%d" % t["id"],
                                        reader)
                assert st == 200, doc
                return doc
        time.sleep(0.1)
    raise AssertionError("no ticket %r:\n%s" % (subject, open(srv.log).read()))


def by_name(msg):
    return {a["filename"]: a for a in msg["attachments"]}


def problem(status, hdrs, body, want):
    assert status == want, (status, body)
    assert hdrs.get("Content-Type", "").startswith("application/problem+json")
    return json.loads(body)


def test_attachment_safety(srv):
    reader = srv.token(role="read")
    admin = srv.token(role="admin")
    agent = srv.token(role="agent")
    ingest(srv, mail("attachments", [
        ("invoice.pdf.exe", "application/pdf", EXE, "attachment", None),
        (BIDI_NAME, "text/plain", b"just text\n", "attachment", None),
        ("statement.html", "text/html", HTML, "attachment", None),
        ("logo.png", "image/png", PNG, "inline", "<logo@customer.test>"),
        ("fake.png", "image/png", PDF, "attachment", None),
        ("Größe 100%.pdf", "application/pdf", PDF, "attachment", None),
    ], html_cid="logo@customer.test"))
    t = ticket_by_subject(srv, reader, "attachments")
    msg = t["messages"][0]
    atts = by_name(msg)
    assert len(atts) == 6, msg["attachments"]

    exe = atts["invoice.pdf.exe"]
    assert exe["blocked"] is True
    assert exe["detected_type"] in ("application/x-dosexec",
                                    "application/vnd.microsoft."
                                    "portable-executable")
    assert exe["type_mismatch"] is True
    assert exe["blocked_reason"].startswith(("detected_type",
                                             "double_extension"))
    assert exe["url"] == "/api/v1/attachments/%d" % exe["id"]

    bidi = atts[BIDI_NAME]
    assert bidi["blocked"] is True
    assert bidi["blocked_reason"].startswith("bidi: U+202E")
    assert "\u202e" not in bidi["safe_filename"]

    page = atts["statement.html"]
    assert page["blocked"] is True and page["detected_type"] == "text/html"

    logo = atts["logo.png"]
    assert logo["blocked"] is False and logo["type_mismatch"] is False
    assert logo["detected_type"] == "image/png"
    assert logo["content_id"] == "logo@customer.test"
    assert logo["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert logo["truncated"] is False

    fake = atts["fake.png"]
    assert fake["detected_type"] == "application/pdf"
    assert fake["type_mismatch"] is True and fake["blocked"] is False

    pdf = atts["Größe 100%.pdf"]
    assert pdf["detected_type"] == "application/pdf"
    assert pdf["blocked"] is False and pdf["type_mismatch"] is False

    # A download: the bytes, an RFC 6266 name, nosniff, a CSP sandbox.
    st, hdrs, body = srv.http_call("GET", pdf["url"], token=reader)
    assert st == 200 and body == PDF
    assert hdrs["Content-Type"] == "application/pdf"
    cd = hdrs["Content-Disposition"]
    assert cd.startswith('attachment; filename="Gr__e 100_.pdf"; '), cd
    assert ("filename*=UTF-8''" + urllib.parse.quote("Größe 100%.pdf",
                                                     safe="")) in cd, cd
    assert hdrs["X-Content-Type-Options"] == "nosniff"
    assert hdrs["Content-Security-Policy"] == "sandbox"
    assert hdrs.get_all("X-Content-Type-Options") == ["nosniff"]
    assert hdrs["Cache-Control"] == "no-store"

    # A mismatched file is served as bytes, not as what it claims or is.
    st, hdrs, body = srv.http_call("GET", fake["url"], token=agent)
    assert st == 200 and body == PDF
    assert hdrs["Content-Type"] == "application/octet-stream"

    # Blocked: 403 for read and agent tokens, the bytes for an admin.
    for tok in (reader, agent):
        doc = problem(*srv.http_call("GET", exe["url"], token=tok), want=403)
        assert "blocked" in doc["detail"] and "admin" in doc["detail"]
    st, hdrs, body = srv.http_call("GET", exe["url"], token=admin)
    assert st == 200 and body == EXE
    assert hdrs["Content-Type"] == "application/octet-stream"
    assert hdrs["Content-Disposition"].startswith("attachment;")
    assert hdrs["Content-Security-Policy"] == "sandbox"
    st, hdrs, body = srv.http_call("GET", page["url"], token=admin)
    assert st == 200 and body == HTML
    assert hdrs["Content-Type"] == "application/octet-stream"
    problem(*srv.http_call("GET", page["url"], token=reader), want=403)
    problem(*srv.http_call("GET", bidi["url"], token=reader), want=403)
    # HEAD: the same headers, no body.
    st, hdrs, body = srv.http_call("HEAD", logo["url"], token=reader)
    assert st == 200 and body == b""
    assert hdrs["Content-Length"] == str(len(PNG))

    # Tenant-scoped: another tenant's token sees nothing; no token, 401.
    other = srv.token(tenant="globex", role="admin")
    problem(*srv.http_call("GET", pdf["url"], token=other), want=404)
    problem(*srv.http_call("GET", pdf["url"]), want=401)
    problem(*srv.http_call("GET", "/api/v1/attachments/999999",
                           token=admin), want=404)
    problem(*srv.http_call("GET", "/api/v1/attachments/x1", token=admin),
            want=404)
    # An ingest token cannot read.
    problem(*srv.http_call("GET", pdf["url"], token=srv.token(role="ingest")),
            want=403)

    # Inline: the PNG, as an image, cacheable by the browser only.
    inline = "/api/v1/inline/" + logo["sha256"]
    st, hdrs, body = srv.http_call("GET", inline, token=reader)
    assert st == 200 and body == PNG
    assert hdrs["Content-Type"] == "image/png"
    assert hdrs["Content-Disposition"] == "inline"
    assert hdrs["X-Content-Type-Options"] == "nosniff"
    assert hdrs["Content-Security-Policy"] == "sandbox"
    assert hdrs["Cache-Control"].startswith("private")
    # ...and nothing that is not a stored, unblocked raster image.
    for a in (page, exe, fake, pdf, bidi):
        problem(*srv.http_call("GET", "/api/v1/inline/" + a["sha256"],
                               token=admin), want=404)
    problem(*srv.http_call("GET", inline, token=other), want=404)
    problem(*srv.http_call("GET", "/api/v1/inline/" + "0" * 64,
                           token=reader), want=404)
    problem(*srv.http_call("GET", "/api/v1/inline/" + logo["sha256"].upper(),
                           token=reader), want=404)
    problem(*srv.http_call("GET", "/api/v1/inline/abc", token=reader),
            want=404)


def test_over_limit_attachments_are_truncated_records(srv):
    reader = srv.token(role="read")
    big = b"mailroom test data\n" + random.Random(9).randbytes(100 * 1024)
    ingest(srv, mail("too big", [
        ("small.pdf", "application/pdf", PDF, "attachment", None),
        ("big.bin", "application/octet-stream", big, "attachment", None),
    ]))
    t = ticket_by_subject(srv, reader, "too big")
    msg = t["messages"][0]
    atts = by_name(msg)
    b = atts["big.bin"]
    assert b["truncated"] is True
    assert b["sha256"] is None and b["url"] is None
    assert b["size"] == len(big)
    assert any(w.startswith("attachment_truncated:") and "big.bin" in w and
               "per-attachment" in w for w in msg["warnings"]), msg["warnings"]
    assert atts["small.pdf"]["truncated"] is False
    st, _, body = srv.http_call("GET", atts["small.pdf"]["url"], token=reader)
    assert st == 200 and body == PDF
    doc = problem(*srv.http_call("GET", "/api/v1/attachments/%d" % b["id"],
                                 token=reader), want=404)
    assert "size limit" in doc["detail"]

    # Per message: 3 x 50 KiB, at most 120 KiB stored: the third is cut.
    # Bytes no sniffer takes for an executable (random ones can start like
    # a DOS .COM file and be blocked, which is another test's business).
    parts = [("part%d.bin" % i, "application/octet-stream",
              b"mailroom test data\n" + random.Random(i).randbytes(50 * 1024),
              "attachment", None) for i in range(3)]
    ingest(srv, mail("many parts", parts))
    msg = ticket_by_subject(srv, reader, "many parts")["messages"][0]
    atts = by_name(msg)
    assert [atts["part%d.bin" % i]["truncated"] for i in range(3)] == \
        [False, False, True]
    assert atts["part1.bin"]["sha256"] == hashlib.sha256(parts[1][2]).hexdigest()
    assert any("per-message" in w for w in msg["warnings"]), msg["warnings"]
    st, _, body = srv.http_call("GET", atts["part1.bin"]["url"], token=reader)
    assert st == 200 and body == parts[1][2]

    # The operator's log says it too.
    log = open(srv.log).read()
    assert "stored as a truncated record" in log
