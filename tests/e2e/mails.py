# SPDX-License-Identifier: Apache-2.0
"""Realistic client messages for the end-to-end threading scenarios.

Each builder returns a Mail: the bytes a client (or an MTA, or a list
server) puts on the wire, and what a test needs to know about them: the
Message-ID as the API shows it (no angle brackets), the subject, the
sender, the References chain. Replies are built from the Mail they answer,
so a test reads like the conversation it replays.

What makes the mail of each client different is what breaks helpdesks, so
it is kept (research/pitfalls.md A and B):

  gmail        multipart/alternative with a 000000000000… boundary, Gmail's
               header order, CA…@mail.gmail.com ids, the gmail_quote
               attribution, In-Reply-To and References on replies.
  outlook      Thread-Topic and a Thread-Index (22-byte root, one 5-byte
               child block per reply), "RE:" in upper case, Word HTML, the
               From/Sent/To/Subject block as the quote, and by default NO
               In-Reply-To or References (pitfall 1).
  apple_mail   "Message-Id" spelled so, a MIME-Version with a comment,
               Apple-Mail= boundaries, quoted-printable UTF-8, a
               blockquote type=cite.
  forwards     Gmail's inline "---------- Forwarded message ---------"
               banner, and Thunderbird's forward as message/rfc822 (the
               inner message keeps its own Message-ID, which must not be
               taken for the outer one's).
  out_of_office  Exchange's "Automatic reply:" (Auto-Submitted:
               auto-generated, X-Auto-Response-Suppress) or a Sieve
               vacation reply (RFC 3834 auto-replied, human-looking
               "Re:" subject, null return path).
  bounce       a Postfix DSN: multipart/report with message/delivery-status
               and the original's headers as text/rfc822-headers, sent with
               a null return path, no In-Reply-To.
  list_copy    the copy a Mailman list relays: same Message-ID, List-Id and
               friends, Precedence: list, a [list] subject tag, and the
               From rewritten to the list (DMARC mitigation) with the
               author in Reply-To.

Every builder takes `when` (an aware datetime) so a test controls the Date
order; the default is now. Nothing here talks to a server.
"""
import base64
import datetime
import email.header
import email.utils
import html
import quopri
import secrets
import string
import struct
import time
import uuid

CRLF = "\r\n"
UTC = datetime.timezone.utc
CET = datetime.timezone(datetime.timedelta(hours=1))
_ALNUM = string.ascii_letters + string.digits


def ago(minutes):
    """An aware datetime `minutes` before now (UTC)."""
    return datetime.datetime.now(UTC) - datetime.timedelta(minutes=minutes)


def _rand(n, alphabet=_ALNUM):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _addr(a):
    """(name, email) or "Name <email>" or "email" -> (name, email)."""
    if isinstance(a, tuple):
        return a
    name, mail = email.utils.parseaddr(a)
    return name, mail


def _fmt_addr(a):
    name, mail = _addr(a)
    # formataddr quotes specials and RFC 2047-encodes non-ASCII names.
    return email.utils.formataddr((name, mail)) if name else mail


def _fmt_list(addrs):
    return ", ".join(_fmt_addr(a) for a in addrs)


def _subject_header(s):
    if _is_ascii(s):
        return s
    return email.header.Header(s, "utf-8").encode()


def _date(when):
    return email.utils.format_datetime(when)


def _is_ascii(s):
    return all(ord(c) < 128 for c in s)


def _crlf(s):
    return s.replace("\r\n", "\n").replace("\n", CRLF)


def _qp(text):
    """UTF-8 quoted-printable with CRLF line ends."""
    enc = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return _crlf(enc.decode("ascii"))


def _quote(text, prefix="> "):
    return "\n".join(prefix + l if l else prefix.rstrip()
                     for l in text.rstrip("\n").split("\n"))


def _reply_subject(subject, prefix):
    s = subject
    # Clients add a prefix only when there is none yet (any case).
    if s[:3].lower() == "re:" or s[:4].lower() == "re :":
        return s
    return prefix + " " + s


class Mail:
    """One message: headers (in wire order), body, and what tests need.

    msgid is the Message-ID without brackets, as the API reports it;
    refs the References chain of this message (bare ids, oldest first);
    text the plain-text content the author wrote (what a reply quotes).
    """

    def __init__(self, headers, body, msgid, subject, sender, to=(), cc=(),
                 refs=(), text="", when=None, envelope_from=None,
                 thread_topic=None, thread_index=None):
        self.headers = [list(h) for h in headers]
        self.body = body
        self.msgid = msgid
        self.subject = subject
        self.sender = _addr(sender)
        self.to = [_addr(a) for a in to]
        self.cc = [_addr(a) for a in cc]
        self.refs = list(refs)
        self.text = text
        self.when = when
        self.envelope_from = (envelope_from if envelope_from is not None
                              else self.sender[1])
        self.thread_topic = thread_topic
        self.thread_index = thread_index

    @property
    def mid(self):
        return "<%s>" % self.msgid

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_block(self):
        return "".join("%s: %s%s" % (k, v, CRLF) for k, v in self.headers)

    @property
    def raw(self):
        return (self.header_block() + CRLF + self.body).encode("utf-8")

    def without(self, *names):
        """A copy without the named headers (a relay or client stripped
        them)."""
        low = {n.lower() for n in names}
        m = self._copy()
        m.headers = [h for h in m.headers if h[0].lower() not in low]
        return m

    def replace(self, name, value):
        """A copy with header `name` set to value (added at the end when
        missing)."""
        m = self._copy()
        for h in m.headers:
            if h[0].lower() == name.lower():
                h[1] = value
                return m
        m.headers.append([name, value])
        return m

    def _copy(self):
        return Mail(self.headers, self.body, self.msgid, self.subject,
                    self.sender, self.to, self.cc, self.refs, self.text,
                    self.when, self.envelope_from, self.thread_topic,
                    self.thread_index)


def _received(host, ip, by="mx.e2e.test", when=None):
    when = when or datetime.datetime.now(UTC)
    return ("from %s (%s [%s])%s\tby %s (Postfix) with ESMTPS id %s%s"
            "\tfor <support@acme.test>; %s" % (
                host, host, ip, CRLF, by, _rand(10, "0123456789ABCDEF"),
                CRLF, _date(when)))


def _text_part(text):
    """(headers, body) of a text/plain part, as Gmail writes them."""
    if _is_ascii(text):
        return ([("Content-Type", 'text/plain; charset="UTF-8"')],
                _crlf(text))
    return ([("Content-Type", 'text/plain; charset="UTF-8"'),
             ("Content-Transfer-Encoding", "quoted-printable")], _qp(text))


def _part(headers, body):
    return "".join("%s: %s%s" % (k, v, CRLF) for k, v in headers) + CRLF + \
        body


def _multipart(boundary, parts, preamble=""):
    out = preamble
    for p in parts:
        out += "--%s%s%s%s" % (boundary, CRLF, p, CRLF)
    return out + "--%s--%s" % (boundary, CRLF)


def _html_paras(text):
    return "".join("<div>%s</div>" % (html.escape(l) if l else "<br>")
                   for l in text.rstrip("\n").split("\n"))


# ---- Gmail --------------------------------------------------------------

def _gmail_id():
    return "CA%s%s@mail.gmail.com" % (_rand(38, _ALNUM + "+_-"),
                                      _rand(8, _ALNUM))


def _gmail_when(when):
    # Gmail's attribution: "On Fri, Nov 27, 2026 at 10:00 AM".
    return when.strftime("%a, %b ") + str(when.day) + when.strftime(
        ", %Y at ") + str(int(when.strftime("%I"))) + when.strftime(":%M %p")


def gmail(frm, to, subject=None, text="", cc=(), reply_to=None, when=None):
    """A message sent from Gmail (web), new or a reply to `reply_to`."""
    when = when or datetime.datetime.now(UTC)
    msgid = _gmail_id()
    refs, irt = [], None
    quote_plain = quote_html = ""
    if reply_to is not None:
        subject = subject or _reply_subject(reply_to.subject, "Re:")
        refs = reply_to.refs + [reply_to.msgid]
        irt = reply_to.msgid
        attribution = "On %s %s wrote:" % (_gmail_when(reply_to.when),
                                           _fmt_addr(reply_to.sender))
        quote_plain = "\n\n%s\n\n%s\n" % (attribution,
                                          _quote(reply_to.text))
        quote_html = (
            '<br><div class="gmail_quote"><div dir="ltr" '
            'class="gmail_attr">%s<br></div><blockquote class="gmail_quote" '
            'style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            'rgb(204,204,204);padding-left:1ex">%s</blockquote></div>' % (
                html.escape(attribution), _html_paras(reply_to.text)))
    boundary = "000000000000" + _rand(12, "0123456789abcdef")
    hp, bp = _text_part(text + quote_plain)
    hh = [("Content-Type", 'text/html; charset="UTF-8"')]
    body_html = '<div dir="ltr">%s</div>%s' % (_html_paras(text), quote_html)
    if _is_ascii(body_html):
        bh = _crlf(body_html + "\n")
    else:
        hh.append(("Content-Transfer-Encoding", "quoted-printable"))
        bh = _qp(body_html + "\n")
    body = _multipart(boundary, [_part(hp, bp), _part(hh, bh)])
    headers = [
        ("Received", "by mail-wr1-f54.google.com with SMTP id "
                     "%s for <support@acme.test>; %s" % (
                         _rand(16, "0123456789abcdef"), _date(when))),
        ("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; "
                           "d=customer.test; s=google; t=%d;%s"
                           "\th=mime-version:references:in-reply-to:from:"
                           "date:message-id:subject:to;%s\tbh=%s=;%s\tb=%s" % (
                               int(when.timestamp()), CRLF, CRLF,
                               _rand(43), CRLF, _rand(70))),
        ("MIME-Version", "1.0"),
    ]
    if reply_to is not None:
        headers += [("References", " ".join("<%s>" % r for r in refs)),
                    ("In-Reply-To", "<%s>" % irt)]
    headers += [("From", _fmt_addr(frm)), ("Date", _date(when)),
                ("Message-ID", "<%s>" % msgid),
                ("Subject", _subject_header(subject)),
                ("To", _fmt_list(to))]
    if cc:
        headers.append(("Cc", _fmt_list(cc)))
    headers.append(("Content-Type",
                    'multipart/alternative; boundary="%s"' % boundary))
    return Mail(headers, body, msgid, subject, frm, to, cc, refs, text, when)


# ---- Outlook / Microsoft 365 ---------------------------------------------

def _filetime(when):
    return int((when.timestamp() + 11644473600) * 10_000_000)


def _thread_index_root(when):
    """MS-OXOMSG 2.2.1.3 conversation index header: the top 6 bytes of the
    FILETIME (the first is 0x01 for any date this century) and a GUID."""
    return struct.pack(">Q", _filetime(when))[:6] + uuid.uuid4().bytes


def _thread_index_child(parent_raw, parent_when, when):
    """One 5-byte child block: 31 bits of time delta (in units of 2^18
    ticks, about 26 ms, the code bit 0) and a random nibble + sequence."""
    delta = max(0, _filetime(when) - _filetime(parent_when)) >> 18
    return parent_raw + struct.pack(">I", delta & 0x7FFFFFFF) + \
        bytes([secrets.randbelow(256)])


def _outlook_id():
    box = "DB9PR0%dMB%04d" % (secrets.randbelow(10), secrets.randbelow(10000))
    return "%s%s@%s.eurprd0%d.prod.outlook.com" % (
        box, _rand(20, "0123456789ABCDEF"), box, secrets.randbelow(10))


def _outlook_sent(when):
    # "Friday, November 27, 2026 10:00 AM"
    return when.strftime("%A, %B ") + str(when.day) + when.strftime(
        ", %Y ") + str(int(when.strftime("%I"))) + when.strftime(":%M %p")


def outlook(frm, to, subject=None, text="", cc=(), reply_to=None, when=None,
            reply_headers=False):
    """A message from Outlook with Microsoft 365. A reply carries only
    Thread-Topic and Thread-Index unless reply_headers (some Exchange paths
    drop In-Reply-To and References: research/pitfalls.md 1)."""
    when = when or datetime.datetime.now(UTC)
    msgid = _outlook_id()
    refs = []
    quote_plain = quote_html = ""
    if reply_to is not None:
        subject = subject or _reply_subject(
            reply_to.thread_topic or reply_to.subject, "RE:")
        topic = reply_to.thread_topic or reply_to.subject
        if reply_to.thread_index:
            parent_raw = base64.b64decode(reply_to.thread_index)
        else:
            parent_raw = _thread_index_root(reply_to.when or when)
        index_raw = _thread_index_child(parent_raw, reply_to.when or when,
                                        when)
        refs = reply_to.refs + [reply_to.msgid]
        block = ("From: %s\nSent: %s\nTo: %s\nSubject: %s" % (
            _fmt_addr(reply_to.sender), _outlook_sent(reply_to.when or when),
            _fmt_list(reply_to.to), reply_to.subject))
        quote_plain = "\n\n________________________________\n%s\n\n%s\n" % (
            block, reply_to.text.rstrip("\n"))
        quote_html = (
            '<div id="divRplyFwdMsg" dir="ltr"><hr style="display:'
            'inline-block;width:98%%" tabindex="-1"><font face="Calibri, '
            'sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> '
            '%s<br>'
            '<b>Sent:</b> %s<br><b>To:</b> %s<br><b>Subject:</b> %s</font>'
            '<div>&nbsp;</div></div><div>%s</div>' % (
                html.escape(_fmt_addr(reply_to.sender)),
                html.escape(_outlook_sent(reply_to.when or when)),
                html.escape(_fmt_list(reply_to.to)),
                html.escape(reply_to.subject),
                _html_paras(reply_to.text)))
    else:
        topic = subject
        index_raw = _thread_index_root(when)
    thread_index = base64.b64encode(index_raw).decode("ascii")
    boundary = "_000_%s_" % msgid.split("@")[0]
    plain = text + quote_plain
    hp = [("Content-Type", 'text/plain; charset="%s"' % (
        "us-ascii" if _is_ascii(plain) else "utf-8")),
        ("Content-Transfer-Encoding", "quoted-printable")]
    word = (
        '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-'
        'microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:'
        'office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/'
        'omml" xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n<meta '
        'http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        '<meta name="Generator" content="Microsoft Word 15 (filtered '
        'medium)">\n<style><!--\np.MsoNormal, li.MsoNormal, div.MsoNormal\n'
        '\t{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;}\n'
        '--></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext="edit" '
        'spidmax="1026" />\n</xml><![endif]-->\n</head>\n<body lang="EN-US" '
        'link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n<div '
        'class="WordSection1">\n%s\n%s</div>\n</body>\n</html>\n' % (
            "".join('<p class="MsoNormal">%s<o:p></o:p></p>\n' % (
                html.escape(l) if l else "<o:p>&nbsp;</o:p>")
                for l in text.rstrip("\n").split("\n")), quote_html))
    hh = [("Content-Type", 'text/html; charset="utf-8"'),
          ("Content-Transfer-Encoding", "quoted-printable")]
    body = _multipart(boundary, [_part(hp, _qp(plain)), _part(hh, _qp(word))])
    headers = [
        ("Received", "from DB9PR01MB1234.eurprd01.prod.outlook.com "
                     "(2603:10a6:10:2c1::9) by AM0PR01MB5678.eurprd01.prod."
                     "outlook.com with HTTPS; %s" % _date(when)),
        ("From", _fmt_addr(frm)),
        ("To", _fmt_list(to)),
    ]
    if cc:
        headers.append(("CC", _fmt_list(cc)))
    headers += [("Subject", _subject_header(subject)),
                ("Thread-Topic", _subject_header(topic)),
                ("Thread-Index", thread_index),
                ("Date", _date(when)),
                ("Message-ID", "<%s>" % msgid)]
    if reply_to is not None and reply_headers:
        headers += [("References", " ".join("<%s>" % r for r in refs)),
                    ("In-Reply-To", "<%s>" % reply_to.msgid)]
    headers += [("Accept-Language", "en-US, de-DE"),
                ("Content-Language", "en-US"),
                ("X-MS-Has-Attach", ""),
                ("X-MS-TNEF-Correlator", ""),
                ("x-ms-publictraffictype", "Email"),
                ("Content-Type", 'multipart/alternative;%s\tboundary="%s"' % (
                    CRLF, boundary)),
                ("MIME-Version", "1.0")]
    m = Mail(headers, body, msgid, subject, frm, to, cc, refs, text, when,
             thread_topic=topic, thread_index=thread_index)
    return m


# ---- Apple Mail -----------------------------------------------------------

def apple_mail(frm, to, subject=None, text="", cc=(), reply_to=None,
               when=None):
    """A message from Apple Mail on macOS, new or a reply."""
    when = when or datetime.datetime.now(CET)
    msgid = "%s@customer.test" % str(uuid.uuid4()).upper()
    refs = []
    quote_plain = quote_html = ""
    if reply_to is not None:
        subject = subject or _reply_subject(reply_to.subject, "Re:")
        refs = reply_to.refs + [reply_to.msgid]
        rw = reply_to.when or when
        attribution = "On %d %s, at %s, %s wrote:" % (
            rw.day, rw.strftime("%b %Y"), rw.strftime("%H:%M"),
            _fmt_addr(reply_to.sender))
        quote_plain = "\n\n> %s\n> \n%s\n" % (attribution,
                                              _quote(reply_to.text))
        quote_html = (
            '<div><br><blockquote type="cite"><div>%s</div><br class="Apple-'
            'interchange-newline"><div>%s</div></blockquote></div>' % (
                html.escape(attribution), _html_paras(reply_to.text)))
    boundary = "Apple-Mail=_%s" % str(uuid.uuid4()).upper()
    plain = text + quote_plain
    hp = [("Content-Transfer-Encoding", "quoted-printable"),
          ("Content-Type", "text/plain;%s\tcharset=utf-8" % CRLF)]
    page = ('<html><head><meta http-equiv="content-type" content="text/html; '
            'charset=utf-8"></head><body style="overflow-wrap: break-word; '
            '-webkit-nbsp-mode: space; line-break: after-white-space;">%s%s'
            '</body></html>' % (_html_paras(text), quote_html))
    hh = [("Content-Transfer-Encoding", "quoted-printable"),
          ("Content-Type", "text/html;%s\tcharset=utf-8" % CRLF)]
    body = _multipart(boundary, [_part(hp, _qp(plain)),
                                 _part(hh, _qp(page + "\n"))])
    headers = [
        ("From", _fmt_addr(frm)),
        ("Content-Type", 'multipart/alternative;%s\tboundary="%s"' % (
            CRLF, boundary)),
        # Apple writes the version of its mailer as a comment here.
        ("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))"),
        ("Subject", _subject_header(subject)),
        ("Date", _date(when)),
    ]
    if reply_to is not None:
        headers.append(("References", " ".join("<%s>" % r for r in refs)))
    headers.append(("To", _fmt_list(to)))
    if cc:
        headers.append(("Cc", _fmt_list(cc)))
    if reply_to is not None:
        headers.append(("In-Reply-To", "<%s>" % reply_to.msgid))
    headers += [("Message-Id", "<%s>" % msgid),
                ("X-Mailer", "Apple Mail (2.3774.600.62)")]
    return Mail(headers, body, msgid, subject, frm, to, cc, refs, text, when)


# ---- Forwards --------------------------------------------------------------

def forward_inline(original, frm, to, text, when=None):
    """Gmail's Forward: the original inline under the banner. Gmail adds no
    reply headers to a forward, so nothing but the body names the original
    (and an address in a body is never trusted: pitfalls.md 13)."""
    when = when or datetime.datetime.now(UTC)
    msgid = _gmail_id()
    subject = "Fwd: " + original.subject
    ow = original.when or when
    banner = ("---------- Forwarded message ---------\nFrom: %s\nDate: %s\n"
              "Subject: %s\nTo: %s\n" % (
                  _fmt_addr(original.sender), _gmail_when(ow),
                  original.subject,
                  ", ".join("<%s>" % a[1] for a in original.to)))
    plain = "%s\n\n%s\n\n%s\n" % (text, banner, original.text.rstrip("\n"))
    page = (
        '<div dir="ltr">%s<br><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">---------- Forwarded message ---------<br>From: '
        '<strong class="gmail_sendername" dir="auto">%s</strong> <span '
        'dir="auto">&lt;<a href="mailto:%s">%s</a>&gt;</span><br>Date: %s<br>'
        'Subject: %s<br>To: %s<br></div><br><br>%s</div></div>\n' % (
            _html_paras(text), html.escape(original.sender[0]),
            original.sender[1], original.sender[1],
            html.escape(_gmail_when(ow)),
            html.escape(original.subject),
            html.escape(", ".join("<%s>" % a[1] for a in original.to)),
            _html_paras(original.text)))
    boundary = "000000000000" + _rand(12, "0123456789abcdef")
    hp, bp = _text_part(plain)
    hh = [("Content-Type", 'text/html; charset="UTF-8"')]
    if _is_ascii(page):
        bh = _crlf(page)
    else:
        hh.append(("Content-Transfer-Encoding", "quoted-printable"))
        bh = _qp(page)
    body = _multipart(boundary, [_part(hp, bp), _part(hh, bh)])
    headers = [("MIME-Version", "1.0"), ("From", _fmt_addr(frm)),
               ("Date", _date(when)), ("Message-ID", "<%s>" % msgid),
               ("Subject", _subject_header(subject)), ("To", _fmt_list(to)),
               ("Content-Type",
                'multipart/alternative; boundary="%s"' % boundary)]
    return Mail(headers, body, msgid, subject, frm, to, (), [], plain, when)


def forward_attached(original, frm, to, text, when=None):
    """Thunderbird's "Forward As Attachment": the original, whole, as a
    message/rfc822 part. The inner Message-ID, In-Reply-To and References
    are the original's, not this message's."""
    when = when or datetime.datetime.now(CET)
    msgid = "%s@customer.test" % uuid.uuid4()
    subject = "Fwd: " + original.subject
    boundary = "------------" + _rand(24)
    name = original.subject.replace('"', "'") + ".eml"
    hp, bp = _text_part(text + "\n")
    inner = original.raw.decode("utf-8")
    att = _part([("Content-Type", 'message/rfc822; charset=UTF-8; name="%s"'
                  % name),
                 ("Content-Disposition", 'attachment; filename="%s"' % name)],
                inner)
    body = _multipart(boundary, [_part(hp, bp), att],
                      preamble="This is a multi-part message in MIME format."
                      + CRLF)
    headers = [("Content-Type", 'multipart/mixed; boundary="%s"' % boundary),
               ("Message-ID", "<%s>" % msgid), ("Date", _date(when)),
               ("MIME-Version", "1.0"),
               ("User-Agent", "Mozilla Thunderbird"),
               ("Content-Language", "en-US"), ("To", _fmt_list(to)),
               ("From", _fmt_addr(frm)),
               ("Subject", _subject_header(subject))]
    return Mail(headers, body, msgid, subject, frm, to, (), [], text, when)


# ---- Automatic mail ---------------------------------------------------------

def out_of_office(original, frm, style="exchange", when=None, to=None):
    """An automatic reply to `original` from `frm`'s mailbox.

    exchange: "Automatic reply: <subject>", Auto-Submitted: auto-generated,
      X-Auto-Response-Suppress: All, Thread-Topic/Index, In-Reply-To and
      References, sent with the mailbox as return path.
    vacation: a Sieve vacation reply (RFC 5230 / RFC 3834):
      Auto-Submitted: auto-replied, a "Re:" subject that looks human, a
      null return path.
    """
    when = when or datetime.datetime.now(UTC)
    to = to or [original.sender]
    refs = original.refs + [original.msgid]
    name, mail = _addr(frm)
    if style == "exchange":
        msgid = _outlook_id()
        subject = "Automatic reply: " + original.subject
        text = ("Thank you for your message. I am out of the office until "
                "Monday, 7 December, with no access to email.\n\nFor urgent "
                "matters please contact my colleague Bob "
                "(bob@customer.test).\n\n%s\n" % name)
        parent_raw = (base64.b64decode(original.thread_index)
                      if original.thread_index else
                      _thread_index_root(original.when or when))
        headers = [
            ("From", _fmt_addr(frm)), ("To", _fmt_list(to)),
            ("Subject", subject),
            ("Thread-Topic", original.thread_topic or original.subject),
            ("Thread-Index", base64.b64encode(_thread_index_child(
                parent_raw, original.when or when, when)).decode("ascii")),
            ("Date", _date(when)), ("Message-ID", "<%s>" % msgid),
            ("References", " ".join("<%s>" % r for r in refs)),
            ("In-Reply-To", "<%s>" % original.msgid),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-MS-Exchange-Inbox-Rules-Loop", mail),
            ("Content-Language", "en-US"),
            ("X-MS-Exchange-Organization-AutoReply", ""),
            ("Content-Type", 'text/plain; charset="us-ascii"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("MIME-Version", "1.0")]
        return Mail(headers, _qp(text), msgid, subject, frm, to, (), refs,
                    text, when)
    msgid = "vacation.%d.%s@mail.customer.test" % (int(time.time()),
                                                  _rand(12).lower())
    subject = _reply_subject(original.subject, "Re:")
    text = ("I am on vacation until 7 December and will read your message "
            "when I am back.\n\n-- \n%s\n" % name)
    headers = [
        ("Received", _received("mail.customer.test", "198.51.100.25",
                               when=when)),
        ("Date", _date(when)), ("From", _fmt_addr(frm)),
        ("To", _fmt_list(to)), ("Subject", subject),
        ("Message-ID", "<%s>" % msgid),
        ("In-Reply-To", "<%s>" % original.msgid),
        ("References", " ".join("<%s>" % r for r in refs)),
        ("Auto-Submitted", "auto-replied (vacation)"),
        ("Precedence", "bulk"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "7bit")]
    return Mail(headers, _crlf(text), msgid, subject, frm, to, (), refs, text,
                when, envelope_from="")


def bounce(original, failed_rcpt, to="support@acme.test",
           reporting_mta="relay.acme.test", remote_mta="mx.customer.test",
           status="5.1.1", when=None):
    """A Postfix non-delivery report about `original`: multipart/report
    with message/delivery-status and the original's headers as
    text/rfc822-headers (which is where its Message-ID is). Sent with a
    null return path and no In-Reply-To, as Postfix does."""
    when = when or datetime.datetime.now(UTC)
    qid = _rand(10, "0123456789ABCDEF")
    msgid = "%s.%s@%s" % (when.strftime("%Y%m%d%H%M%S"), qid, reporting_mta)
    boundary = "%s.%d/%s" % (qid, int(when.timestamp()), reporting_mta)
    diag = ("550 5.1.1 <%s>: Recipient address rejected: User unknown in "
            "virtual mailbox table" % failed_rcpt)
    note = (
        "This is the mail system at host %s.\n\nI'm sorry to have to inform "
        "you that your message could not\nbe delivered to one or more "
        "recipients. It's attached below.\n\nFor further assistance, please "
        "send mail to postmaster.\n\nIf you do so, please include this "
        "problem report. You can\ndelete your own text from the attached "
        "returned message.\n\n                   The mail system\n\n<%s>: "
        "host %s[203.0.113.7] said:\n    %s (in reply to RCPT TO command)\n"
        % (reporting_mta, failed_rcpt, remote_mta, diag))
    dsn = (
        "Reporting-MTA: dns; %s\nX-Postfix-Queue-ID: %s\nX-Postfix-Sender: "
        "rfc822; %s\nArrival-Date: %s\n\nFinal-Recipient: rfc822; %s\n"
        "Original-Recipient: rfc822;%s\nAction: failed\nStatus: %s\n"
        "Remote-MTA: dns; %s\nDiagnostic-Code: smtp; %s\n" % (
            reporting_mta, qid, to, _date(when), failed_rcpt, failed_rcpt,
            status, remote_mta, diag))
    parts = [
        _part([("Content-Description", "Notification"),
               ("Content-Type", "text/plain; charset=us-ascii")],
              _crlf(note)),
        _part([("Content-Description", "Delivery report"),
               ("Content-Type", "message/delivery-status")], _crlf(dsn)),
        _part([("Content-Description", "Undelivered Message Headers"),
               ("Content-Type", "text/rfc822-headers")],
              original.header_block()),
    ]
    body = _multipart(boundary, parts,
                      preamble="This is a MIME-encapsulated message." +
                      CRLF + CRLF)
    subject = "Undelivered Mail Returned to Sender"
    headers = [
        ("Received", "by %s (Postfix)%s\tid %s; %s" % (
            reporting_mta, CRLF, qid, _date(when))),
        ("Date", _date(when)),
        ("From", "MAILER-DAEMON@%s (Mail Delivery System)" % reporting_mta),
        ("Subject", subject),
        ("To", to),
        ("Auto-Submitted", "auto-replied"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/report; report-type=delivery-status;%s'
                         '\tboundary="%s"' % (CRLF, boundary)),
        ("Content-Transfer-Encoding", "8bit"),
        ("Message-Id", "<%s>" % msgid)]
    return Mail(headers, body, msgid, subject,
                ("Mail Delivery System", "MAILER-DAEMON@" + reporting_mta),
                [("", to)], (), [], note, when, envelope_from="")


def list_copy(original, list_name="users", list_host="lists.customer.test",
              munge_from=True):
    """The copy of `original` a Mailman 3 list relays to its members: the
    same Message-ID, a [list] subject tag, List-* headers, Precedence: list,
    the list's bounce address as return path and, with munge_from (DMARC
    mitigation), From rewritten to the list with the author in Reply-To."""
    post = "%s@%s" % (list_name, list_host)
    tag = "[%s] " % list_name
    subject = original.subject
    if tag.strip() not in subject:
        # Mailman puts the tag after a reply prefix: "Re: [users] ...".
        if subject[:3].lower() == "re:":
            subject = subject[:3] + " " + tag + subject[3:].lstrip()
        else:
            subject = tag + subject
    name, mail = original.sender
    skip = {"subject", "received", "dkim-signature"}
    if munge_from:
        skip |= {"from", "reply-to"}
    headers = [("Received", _received(list_host, "198.51.100.40",
                                      when=original.when))]
    for k, v in original.headers:
        if k.lower() in skip:
            continue
        headers.append((k, v))
        if k.lower() == "date":
            headers.append(("Subject", _subject_header(subject)))
    if munge_from:
        headers += [("From", _fmt_addr(("%s via %s" % (name or mail,
                                                       list_name), post))),
                    ("Reply-To", _fmt_addr(original.sender))]
    headers += [
        ("X-Mailman-Version", "3.3.9"),
        ("Precedence", "list"),
        ("List-Id", '"%s" <%s.%s>' % (list_name.capitalize(), list_name,
                                      list_host)),
        ("List-Archive", "<https://%s/archives/list/%s/>" % (list_host,
                                                             post)),
        ("List-Help", "<mailto:%s-request@%s?subject=help>" % (list_name,
                                                               list_host)),
        ("List-Owner", "<mailto:%s-owner@%s>" % (list_name, list_host)),
        ("List-Post", "<mailto:%s>" % post),
        ("List-Subscribe", "<mailto:%s-join@%s>" % (list_name, list_host)),
        ("List-Unsubscribe", "<mailto:%s-leave@%s>" % (list_name,
                                                       list_host)),
    ]
    frm = ("%s via %s" % (name or mail, list_name), post) if munge_from \
        else original.sender
    m = Mail(headers, original.body, original.msgid, subject, frm,
             original.to, original.cc, original.refs, original.text,
             original.when,
             envelope_from="%s-bounces@%s" % (list_name, list_host),
             thread_topic=original.thread_topic,
             thread_index=original.thread_index)
    return m
