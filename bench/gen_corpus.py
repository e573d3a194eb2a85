#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Deterministic support-inbox corpus for the parse benchmark.

Writes N messages (default 2000, about 166 MB, about 83% of the bytes
base64 attachments) as OUT/msgs/NNNNN.eml, and OUT/expected.jsonl: per file
the "comparable fields" (the shape of tests/diff/py_fields.py) the message
SHOULD parse to, because the generator built it from those values:

  {"file": "00001.eml", "kind", "subject", "from": [{"name", "email"}],
   "to", "cc", "date": "YYYY-MM-DDTHH:MM:SSZ", "message_id", "in_reply_to",
   "references", "text", "html",
   "attachments": [{"filename", "content_type", "size", "sha256"}]}

text and html are the decoded bodies (line ends "\\n"; compare them with
whitespace collapsed). An attachment is every leaf part that is not the
body, in tree order; a message/rfc822 part is a leaf whose bytes are the
embedded message exactly as it stands in the file.

The mix: plain-text replies with quoted history (utf-8, format=flowed,
iso-8859-1, koi8-r, gb2312, shift_jis; 7bit, 8bit, quoted-printable,
base64), Gmail-style and Outlook-style multipart/alternative (Outlook's
windows-1252 quoted-printable and Word HTML), inline forwards, forwards as
message/rfc822, multipart/related inline images by cid, base64 attachments
(pdf, zip, png, jpeg, docx, csv) of up to a few MB with RFC 2231 and
RFC 2047 filenames, and RFC 2047 subjects and names in all those charsets,
including subjects made of several padded base64 encoded words. About half
the messages carry no attachment at all. Only valid, unambiguous MIME: what
a message should parse to is never a matter of opinion.

Same seed and N -> byte-identical output (random.Random only, no clock, no
hash order). Stdlib only.

Usage: gen_corpus.py [--count N] [--seed S] OUT_DIR
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import sys
import urllib.parse

CRLF = "\r\n"

# ---- vocabulary ------------------------------------------------------------

FIRST = ["Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Pierre", "Sofia",
         "Lukas", "Aiko", "Carlos", "Fatima", "Tom", "Priya", "Noah", "Emma",
         "Liam", "Chloe", "Mateo", "Hannah"]
LAST = ["Doe", "Smith", "Garcia", "Khan", "Zhang", "Ivanova", "Martin",
        "Rossi", "Weber", "Tanaka", "Lopez", "Haddad", "Brown", "Patel",
        "Miller", "Dubois", "Nguyen", "Kowalski", "Jensen", "Silva"]
DOMAINS = ["customer.example", "acme-corp.example", "mail.example.org",
           "shop.example.net", "globex.example", "initech.example",
           "example.co.uk", "firma.example.de", "societe.example.fr"]
AGENTS = [("Support Team", "support@helpdesk.example"),
          ("Billing", "billing@helpdesk.example"),
          ("Ana (Support)", "ana@helpdesk.example"),
          ("Tech Support", "tech@helpdesk.example")]

# Unicode names per charset: each must encode in that charset.
INTL_NAMES = {
    "utf-8": ["José García", "Zoë Brontë", "Łukasz Żółć", "Dvořák Jiří",
              "Ольга Иванова", "王伟", "田中 愛子", "Søren Kierkegård"],
    "iso-8859-1": ["François Dupont", "Jürgen Müller", "Ångström Åsa",
                   "Begoña Núñez", "Renée Côté"],
    "windows-1252": ["Ž. Šimek", "Œdipe Lefèvre", "François “Frank” Roy"],
    "koi8-r": ["Ольга Иванова", "Дмитрий Петров", "Сергей Смирнов"],
    "gb2312": ["王伟", "李娜", "张静"],
    "shift_jis": ["田中 愛子", "佐藤 健", "鈴木 花子"],
}

SENTENCES = [
    "I cannot log in to my account since this morning.",
    "The invoice for last month shows the wrong amount.",
    "Could you please check the status of my order?",
    "The package arrived damaged and the box was open.",
    "I have attached the screenshots of the error message.",
    "The export to CSV stops at about half of the rows.",
    "We were charged twice for the same subscription.",
    "Please cancel the renewal that is due next week.",
    "The password reset link in your email has expired.",
    "Our team cannot see the shared calendar any more.",
    "The mobile app crashes when I open the settings page.",
    "Can you send me a copy of the signed contract?",
    "The delivery address on the order is not correct.",
    "Thanks for the quick reply, that solved the problem.",
    "Unfortunately the issue came back after the update.",
    "I tried clearing the cache and restarting, no luck.",
    "Is there a way to add more users to our plan?",
    "The report generated yesterday is missing the totals.",
    "We need the VAT number printed on every invoice.",
    "The printer on the third floor prints blank pages.",
    "Our accountant asks for the receipts of the last quarter.",
    "The sync between the desktop and the phone is broken.",
    "I would like to upgrade to the annual plan.",
    "Attached you will find the log file from the server.",
    "The customer portal shows an error 500 on login.",
]
AGENT_SENTENCES = [
    "Thank you for contacting us.",
    "I have forwarded your request to our technical team.",
    "Could you tell us which version of the app you are using?",
    "We have issued a refund, it should appear within five days.",
    "The problem was caused by a configuration change on our side.",
    "Please try again now and let us know if it works.",
    "I have updated the address on your order.",
    "A replacement has been shipped today.",
    "Your ticket has been escalated to second-level support.",
    "We are sorry for the inconvenience this has caused.",
]
SUBJECTS = [
    "Login problem", "Invoice question", "Order status", "Damaged package",
    "Error when exporting", "Double charge on my card",
    "Cancel subscription", "Password reset not working",
    "Calendar sharing broken", "App crashes on start",
    "Copy of the contract", "Wrong delivery address", "Add more users",
    "Missing totals in report", "VAT number on invoices",
    "Printer prints blank pages", "Receipts for Q3", "Sync issue",
    "Upgrade to annual plan", "Server log attached", "Portal error 500",
]

# Per charset: (subject phrases, body sentences). Characters chosen to be
# mapped identically by every converter (no 0x5C/0x7E in Shift_JIS, no
# wave dash, GB2312 proper only).
INTL = {
    "iso-8859-1": (
        ["Réclamation commande", "Rückerstattung für Bestellung",
         "Problème de connexion", "Factura de diciembre errónea",
         "Grüße und eine Frage"],
        ["Bonjour, je n'arrive plus à me connecter à mon compte.",
         "La facture de décembre est erronée, merci de vérifier.",
         "Können Sie mir bitte die Rechnung noch einmal schicken?",
         "Mit freundlichen Grüßen aus München.",
         "El pedido llegó dañado, ¿pueden enviarme otro?",
         "Ça ne marche toujours pas après la mise à jour.",
         "À bientôt et merci d'avance pour votre réponse."]),
    "windows-1252": (
        ["Invoice “March” – €120 overcharged", "Re: “urgent” … refund",
         "Œuvre complète – commande n° 42"],
        ["We were charged €49.90 twice – please refund one of them.",
         "The “export” button does nothing… nothing at all.",
         "It’s the third time I’m writing about this.",
         "Our contact is Ž. Šimek, he’ll send the documents.",
         "Price list: 10 × €12.50 — see the attached file.",
         "Thanks in advance — we’re waiting for the fix."]),
    "koi8-r": (
        ["Не могу войти в кабинет", "Вопрос по счёту",
         "Возврат денег за заказ", "Ошибка при оплате"],
        ["Здравствуйте! Не могу войти в личный кабинет.",
         "Счёт за прошлый месяц выставлен неправильно.",
         "Пожалуйста, проверьте статус моего заказа.",
         "Посылка пришла повреждённой, коробка была открыта.",
         "Спасибо за быстрый ответ, проблема решена.",
         "С уважением, Ольга."]),
    "gb2312": (
        ["订单还没有发货", "发票金额错误", "无法登录账户", "请求退款"],
        ["您好，我的订单还没有发货。",
         "请尽快处理，谢谢！",
         "上个月的发票金额不正确，请核对。",
         "我无法登录我的账户，密码重置邮件也没有收到。",
         "附件是错误信息的截图。",
         "此致敬礼。"]),
    "shift_jis": (
        ["請求書について", "ログインできません", "注文の状況を教えてください",
         "返金のお願い"],
        ["お世話になっております。",
         "請求書の件でご連絡いたしました。",
         "ログインできなくなりました。確認をお願いします。",
         "注文した商品がまだ届いていません。",
         "よろしくお願いいたします。",
         "添付ファイルをご確認ください。"]),
    "utf-8": (
        ["Problème de connexion ✔", "Заказ №4521 — возврат", "发票问题 🙏",
         "Straße gesperrt – Lieferung?", "ログインできません (urgent)",
         "Ñandú & Çağrı: invoice ❗"],
        ["Hello 👋, the app still shows “sync failed”.",
         "Grüße aus Köln — die Lieferung ist nicht angekommen.",
         "Здравствуйте, счёт выставлен дважды.",
         "您好，附件是截图。",
         "Merci beaucoup pour votre aide ❤",
         "The price shows as 1 234,56 € instead of 1.234,56 €."]),
}

PY_CODEC = {"utf-8": "utf-8", "iso-8859-1": "latin-1",
            "windows-1252": "cp1252", "koi8-r": "koi8_r",
            "gb2312": "gb2312", "shift_jis": "shift_jis",
            "us-ascii": "ascii"}
# How senders spell the label, per charset.
LABELS = {"utf-8": ["utf-8", "UTF-8", "\"utf-8\"", "\"UTF-8\""],
          "iso-8859-1": ["iso-8859-1", "ISO-8859-1", "\"iso-8859-1\""],
          "windows-1252": ["windows-1252", "\"Windows-1252\""],
          "koi8-r": ["koi8-r", "KOI8-R", "\"koi8-r\""],
          "gb2312": ["gb2312", "GB2312", "\"gb2312\""],
          "shift_jis": ["shift_jis", "Shift_JIS", "\"Shift_JIS\""],
          "us-ascii": ["us-ascii", "\"us-ascii\""]}

ZONES = [0, 60, 120, -300, -480, 330, 540, 480, 180, -240, 600]
DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
       "Nov", "Dec"]

OUTLOOK_STYLE = """<style><!--
/* Font Definitions */
@font-face
	{font-family:"Cambria Math";
	panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face
	{font-family:Calibri;
	panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face
	{font-family:Aptos;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal
	{margin:0in;
	font-size:11.0pt;
	font-family:"Calibri",sans-serif;
	mso-ligatures:standardcontextual;}
a:link, span.MsoHyperlink
	{mso-style-priority:99;
	color:#0563C1;
	text-decoration:underline;}
span.EmailStyle17
	{mso-style-type:personal-compose;
	font-family:"Calibri",sans-serif;
	color:windowtext;}
.MsoChpDefault
	{mso-style-type:export-only;
	font-size:10.0pt;
	mso-ligatures:none;}
@page WordSection1
	{size:8.5in 11.0in;
	margin:1.0in 1.0in 1.0in 1.0in;}
div.WordSection1
	{page:WordSection1;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->"""


# ---- encoders ---------------------------------------------------------------

def qp_encode(data):
    """Quoted-printable (RFC 2045 6.7) of bytes whose lines end in LF:
    CRLF hard breaks, soft breaks keep lines within 76 columns."""
    out = []
    for line in data.split(b"\n"):
        enc = []
        for i, b in enumerate(line):
            last = i == len(line) - 1
            if b in (0x20, 0x09) and not last:
                enc.append(chr(b))
            elif 33 <= b <= 126 and b != 0x3D:
                enc.append(chr(b))
            else:
                enc.append("=%02X" % b)
        cur = ""
        for tok in enc:
            if len(cur) + len(tok) > 75:
                out.append(cur + "=")
                cur = ""
            cur += tok
        out.append(cur)
    return (CRLF.join(out)).encode("ascii")


def b64_lines(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def q_word(cs, s):
    """One RFC 2047 Q encoded word ('Q' rules for a phrase/subject)."""
    out = []
    for b in s.encode(PY_CODEC[cs]):
        if b == 0x20:
            out.append("_")
        elif (0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A
              or b in b"!*+-/"):
            out.append(chr(b))
        else:
            out.append("=%02X" % b)
    return "=?%s?Q?%s?=" % (cs, "".join(out))


def b_word(cs, s):
    return "=?%s?B?%s?=" % (
        cs, base64.b64encode(s.encode(PY_CODEC[cs])).decode("ascii"))


def chunks(rng, s, lo, hi):
    """Split s into pieces of lo..hi characters (never inside a
    character, as RFC 2047 section 5 requires of encoded words)."""
    out = []
    i = 0
    while i < len(s):
        n = rng.randint(lo, hi)
        out.append(s[i:i + n])
        i += n
    return out


def encode_words(rng, cs, s, style):
    """Encoded words for s in charset cs, joined by folding white space
    (ignored between adjacent encoded words, RFC 2047 section 6.2)."""
    if style == "B1":
        return b_word(cs, s)
    if style == "Q1":
        return q_word(cs, s)
    maker = b_word if style == "Bn" else q_word
    words = [maker(cs, p) for p in chunks(rng, s, 3, 9)]
    seps = [rng.choice([" ", CRLF + " ", CRLF + "\t"])
            for _ in range(len(words) - 1)]
    out = words[0]
    for sep, w in zip(seps, words[1:]):
        out += sep + w
    return out


def rfc2231(rng, cs, name):
    """filename*= (one or several continuations) of a non-ASCII name."""
    pct = urllib.parse.quote(name.encode(PY_CODEC[cs]),
                             safe="!#$&+-.^_`|~")
    if len(pct) < 40 or rng.random() < 0.5:
        return "filename*=%s''%s" % (cs, pct)
    # Continuations; never split inside a %XX escape.
    parts = []
    i = 0
    while i < len(pct):
        j = min(len(pct), i + rng.randint(18, 30))
        while j < len(pct) and "%" in pct[j - 2:j]:
            j += 1
        parts.append(pct[i:j])
        i = j
    segs = ["filename*%d*=%s%s" % (k, (cs + "''") if k == 0 else "", p)
            for k, p in enumerate(parts)]
    return (";" + CRLF + " ").join(segs)


def encodable(s, charset):
    try:
        s.encode(PY_CODEC[charset])
        return True
    except UnicodeEncodeError:
        return False


def html_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- message model ----------------------------------------------------------

class Part:
    """A leaf or multipart; serialises to bytes with CRLF line ends."""

    def __init__(self, headers, body=b"", children=None, boundary=None,
                 preamble=""):
        self.headers = headers
        self.body = body
        self.children = children
        self.boundary = boundary
        self.preamble = preamble

    def content(self):
        if self.children is None:
            return self.body
        out = []
        if self.preamble:
            out.append(self.preamble.encode("ascii") + b"\r\n")
        for c in self.children:
            out.append(b"--" + self.boundary.encode("ascii") + b"\r\n")
            out.append(c.serialize() + b"\r\n")
        out.append(b"--" + self.boundary.encode("ascii") + b"--\r\n")
        return b"".join(out)

    def serialize(self):
        head = CRLF.join(self.headers).encode("utf-8") + b"\r\n\r\n"
        return head + self.content()


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.threads = []      # [(message_id, references, subject, text)]
        self.nbound = 0
        self.b64_bytes = 0     # base64 attachment bytes written

    # -- small pieces --

    def pick(self, seq):
        return self.rng.choice(seq)

    def boundary(self, style):
        r = self.rng
        self.nbound += 1
        if style == "gmail":
            return "000000000000%012x" % r.getrandbits(48)
        if style == "outlook":
            return "_%03d_%s%04d%s_" % (
                r.randint(0, 9), self.pick(["DB9PR02MB", "AM6PR08MB",
                                             "PH0PR11MB", "SN6PR04MB"]),
                r.randint(1000, 9999), "%08X" % r.getrandbits(32))
        if style == "apple":
            return "Apple-Mail=_%08X-%04X-%04X-%04X-%012X" % (
                r.getrandbits(32), r.getrandbits(16), r.getrandbits(16),
                r.getrandbits(16), r.getrandbits(48))
        return "------------%s" % "".join(
            r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            for _ in range(24))

    def person(self, charset=None):
        """-> (header text, expected {name, email})."""
        r = self.rng
        first, last = self.pick(FIRST), self.pick(LAST)
        email = "%s.%s@%s" % (first.lower(), last.lower(),
                              self.pick(DOMAINS))
        kind = r.random()
        if charset and charset != "us-ascii":
            name = self.pick(INTL_NAMES[charset])
            style = self.pick(["B1", "Q1", "Q1"])
            word = encode_words(r, charset, name, style)
            return "%s <%s>" % (word, email), {"name": name, "email": email}
        if kind < 0.35:
            name = "%s %s" % (first, last)
            return "\"%s\" <%s>" % (name, email), {"name": name,
                                                   "email": email}
        if kind < 0.6:
            name = "%s %s" % (first, last)
            return "%s <%s>" % (name, email), {"name": name, "email": email}
        if kind < 0.75:
            name = "%s, %s" % (last, first)
            return "\"%s\" <%s>" % (name, email), {"name": name,
                                                   "email": email}
        if kind < 0.85:
            return email, {"name": None, "email": email}
        if kind < 0.92:
            return "<%s>" % email, {"name": None, "email": email}
        name = "%s \"%s\" %s" % (first, first[:2].upper(), last)
        return "\"%s\" <%s>" % (name.replace("\"", "\\\""), email), \
            {"name": name, "email": email}

    def addr_list(self, n, charset=None):
        hdrs, exp = [], []
        for _ in range(n):
            h, e = self.person(charset if self.rng.random() < 0.3 else None)
            hdrs.append(h)
            exp.append(e)
        sep = self.pick([", ", "," + CRLF + " ", "," + CRLF + "\t"])
        return sep.join(hdrs), exp

    def date(self):
        r = self.rng
        base = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        utc = base + datetime.timedelta(seconds=r.randint(0, 540 * 86400))
        off = self.pick(ZONES)
        tz = datetime.timezone(datetime.timedelta(minutes=off))
        local = utc.astimezone(tz)
        sign = "+" if off >= 0 else "-"
        zone = "%s%02d%02d" % (sign, abs(off) // 60, abs(off) % 60)
        day = str(local.day) if r.random() < 0.6 else "%02d" % local.day
        s = "%s %s %d %02d:%02d:%02d %s" % (
            day, MON[local.month - 1], local.year, local.hour, local.minute,
            local.second, zone)
        if r.random() < 0.85:
            s = "%s, %s" % (DOW[local.weekday()], s)
        if r.random() < 0.15 and off == 0:
            s += " (UTC)"
        return s, utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    def msgid(self, style):
        r = self.rng
        if style == "gmail":
            alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789+_-=")
            return "CA%s@mail.gmail.com" % "".join(
                r.choice(alphabet) for _ in range(44))
        if style == "outlook":
            host = "%s%04d" % (self.pick(["DB9PR02MB", "AM6PR08MB",
                                          "PH0PR11MB"]), r.randint(0, 9999))
            return "%s%08X%08X@%s.eurprd02.prod.outlook.com" % (
                host, r.getrandbits(32), r.getrandbits(32), host)
        return "%08x-%04x-%04x-%04x-%012x@%s" % (
            r.getrandbits(32), r.getrandbits(16), r.getrandbits(16),
            r.getrandbits(16), r.getrandbits(48), self.pick(DOMAINS))

    def sentences(self, n, pool=SENTENCES):
        return [self.pick(pool) for _ in range(n)]

    def wrap(self, text, width=72):
        out, line = [], ""
        for w in text.split(" "):
            if line and len(line) + 1 + len(w) > width:
                out.append(line)
                line = w
            else:
                line = (line + " " + w) if line else w
        if line:
            out.append(line)
        return out

    def noise_headers(self, style):
        """Received chains, DKIM, ARC: realistic header weight."""
        r = self.rng
        h = []
        for i in range(r.randint(5, 14)):
            h.append("Received: from mx%d.%s (mx%d.%s [203.0.113.%d])" % (
                i, self.pick(DOMAINS), i, self.pick(DOMAINS),
                r.randint(1, 254)) + CRLF +
                "\tby mail.helpdesk.example (Postfix) with ESMTPS id %010X"
                % r.getrandbits(40) + CRLF +
                "\tfor <support@helpdesk.example>; %s" % self.date()[0])
        h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;" +
                 CRLF + "        d=%s; s=s%d; t=%d;" % (
                     self.pick(DOMAINS), r.randint(1, 9),
                     r.randint(1700000000, 1750000000)) + CRLF +
                 "        h=from:to:subject:date:message-id;" + CRLF +
                 "        bh=%s;" % base64.b64encode(
                     r.randbytes(32)).decode() + CRLF +
                 "        b=" + (CRLF + "         ").join(
                     base64.b64encode(r.randbytes(192)).decode()[i:i + 64]
                     for i in range(0, 256, 64)))
        if r.random() < 0.6:
            h.extend(self.arc())
        h.append("Authentication-Results: mail.helpdesk.example;" + CRLF +
                 "\tdkim=pass header.d=%s; spf=pass smtp.mailfrom=%s" % (
                     self.pick(DOMAINS), self.pick(DOMAINS)))
        if style == "outlook":
            h.append("Thread-Topic: %s" % self.pick(SUBJECTS))
            h.append("Thread-Index: %s" % base64.b64encode(
                r.randbytes(22)).decode())
            h.append("X-MS-Has-Attach: ")
            h.append("X-MS-TNEF-Correlator: ")
            h.append("X-MS-Exchange-Organization-SCL: -1")
            h.append("x-ms-publictraffictype: Email")
            h.append("X-MS-Exchange-CrossTenant-id: %08x-%04x-%04x" % (
                r.getrandbits(32), r.getrandbits(16), r.getrandbits(16)))
            h.append("Content-Language: en-US")
            h.append("X-Microsoft-Antispam-Message-Info:" + CRLF + "\t" +
                     (CRLF + "\t").join(self.b64_text(r.randint(6000, 12000))))
            h.append("X-Forefront-Antispam-Report: CIP:255.255.255.255;"
                     "CTRY:;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:%s;PTR:;"
                     "CAT:NONE;SFS:(13230040)(366016)(1800799024)(376014);"
                     "DIR:OUT;SFP:1101;" % self.pick(DOMAINS))
        elif style == "gmail":
            h.append("X-Gm-Message-State: %s" % base64.b64encode(
                r.randbytes(48)).decode())
            h.append("X-Google-Smtp-Source: %s" % base64.b64encode(
                r.randbytes(60)).decode())
        else:
            h.append("User-Agent: Mozilla Thunderbird")
        return h

    def b64_text(self, n):
        """n bytes of base64 text in 76-column lines (header filler)."""
        t = base64.b64encode(self.rng.randbytes(n * 3 // 4)).decode()
        return [t[i:i + 76] for i in range(0, len(t), 76)]

    def arc(self):
        r = self.rng
        i = r.randint(1, 2)
        dom = self.pick(DOMAINS)
        return [
            "ARC-Seal: i=%d; a=rsa-sha256; t=%d; cv=none;" % (
                i, r.randint(1700000000, 1750000000)) + CRLF +
            "        d=%s; s=arc-20240605;" % dom + CRLF + "        b=" +
            (CRLF + "         ").join(self.b64_text(344)),
            "ARC-Message-Signature: i=%d; a=rsa-sha256; c=relaxed/relaxed;"
            % i + CRLF + "        d=%s; s=arc-20240605;" % dom + CRLF +
            "        h=to:subject:message-id:date:from:mime-version;" + CRLF +
            "        bh=%s;" % base64.b64encode(r.randbytes(32)).decode() +
            CRLF + "        b=" + (CRLF + "         ").join(
                self.b64_text(344)),
            "ARC-Authentication-Results: i=%d; mx.google.com;" % i + CRLF +
            "       dkim=pass header.i=@%s header.s=s1;" % dom + CRLF +
            "       spf=pass (domain of %s designates 203.0.113.%d as "
            "permitted sender) smtp.mailfrom=%s;" % (
                dom, r.randint(1, 254), dom) + CRLF +
            "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=%s"
            % dom]

    # -- bodies --

    def body_text(self, charset, quote=None, forward=None, flowed=False):
        """-> unicode text (LF line ends): greeting, paragraphs, signature
        and the quoted history of a reply or an inline forward. Quoted
        lines the charset cannot carry are left out. flowed: soft line
        breaks (trailing space, RFC 3676) inside paragraphs."""
        r = self.rng
        lines = []
        lines.append(self.pick(["Hello,", "Hi,", "Dear support team,",
                                "Good morning,", "Hi there,"]))
        lines.append("")
        intl = INTL.get(charset)
        for _ in range(r.randint(2, 6)):
            sents = self.sentences(r.randint(2, 5))
            if intl and charset != "utf-8":
                sents += [self.pick(intl[1]) for _ in range(r.randint(1, 3))]
            elif charset == "utf-8" and r.random() < 0.5:
                sents.append(self.pick(INTL["utf-8"][1]))
            para = self.wrap(" ".join(sents))
            if flowed:
                para = [ln + " " for ln in para[:-1]] + para[-1:]
            lines.extend(para)
            lines.append("")
        lines.append(self.pick(["Thanks,", "Best regards,", "Cheers,",
                                "Kind regards,"]))
        lines.append(self.pick(FIRST))
        if quote is not None:
            qdate, qname, qtext = quote
            if not encodable(qname, charset):
                qname = "the customer"
            lines.append("")
            lines.append("On %s, %s wrote:" % (qdate, qname))
            for ql in qtext.split("\n")[:600]:
                ql = ql.rstrip(" ")
                if not encodable(ql, charset):
                    continue
                lines.append((">" + ql) if ql.startswith(">")
                             else ("> " + ql) if ql else ">")
        if forward is not None:
            fdate, femail, fsubj, ftext = forward
            lines.append("")
            lines.append("---------- Forwarded message ---------")
            lines.append("From: <%s>" % femail)
            lines.append("Date: %s" % fdate)
            if encodable(fsubj, charset):
                lines.append("Subject: %s" % fsubj)
            lines.append("")
            for fl in ftext.split("\n"):
                if encodable(fl, charset):
                    lines.append(fl.rstrip(" "))
        return "\n".join(lines)

    def text_part(self, text, charset, cte, flowed=False):
        """text/plain leaf -> (Part, expected text)."""
        codec = PY_CODEC[charset]
        raw = text.encode(codec)
        label = self.pick(LABELS[charset])
        ct = "Content-Type: text/plain; charset=%s" % label
        if flowed:
            ct += "; format=flowed"
        if cte == "quoted-printable":
            body = qp_encode(raw) + b"\r\n"
        elif cte == "base64":
            body = b64_lines(raw.replace(b"\n", b"\r\n"))
        else:
            body = raw.replace(b"\n", b"\r\n") + b"\r\n"
        hdrs = [ct, "Content-Transfer-Encoding: %s" % cte]
        return Part(hdrs, body), text

    def html_part(self, html, charset, cte):
        raw = html.encode(PY_CODEC[charset])
        if cte == "quoted-printable":
            body = qp_encode(raw) + b"\r\n"
        elif cte == "base64":
            body = b64_lines(raw.replace(b"\n", b"\r\n"))
        else:
            body = raw.replace(b"\n", b"\r\n") + b"\r\n"
        hdrs = ["Content-Type: text/html; charset=%s" % self.pick(
            LABELS[charset]), "Content-Transfer-Encoding: %s" % cte]
        return Part(hdrs, body), html

    def gmail_html(self, text, cids):
        body_lines, quote_lines = [], []
        in_quote = False
        for ln in text.split("\n"):
            if ln.startswith("On ") and ln.endswith(" wrote:"):
                in_quote = True
            (quote_lines if in_quote else body_lines).append(ln)
        out = ["<div dir=\"ltr\">"]
        for ln in body_lines:
            out.append("<div>%s</div>" % (html_escape(ln) if ln else "<br>"))
        for cid, w in cids:
            out.append("<div><img src=\"cid:%s\" alt=\"image.png\" "
                       "width=\"%d\"><br></div>" % (cid, w))
        out.append("</div>")
        if quote_lines:
            out.append("<br><div class=\"gmail_quote\"><div dir=\"ltr\" "
                       "class=\"gmail_attr\">%s<br></div>"
                       % html_escape(quote_lines[0]))
            out.append("<blockquote class=\"gmail_quote\" style=\"margin:0px"
                       " 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204)"
                       ";padding-left:1ex\">")
            for ln in quote_lines[1:]:
                out.append(html_escape(ln.lstrip("> ")) + "<br>")
            out.append("</blockquote></div>")
        return "\n".join(out) + "\n"

    def outlook_html(self, text, cids, charset):
        out = ["<html xmlns:v=\"urn:schemas-microsoft-com:vml\" "
               "xmlns:o=\"urn:schemas-microsoft-com:office:office\" "
               "xmlns:w=\"urn:schemas-microsoft-com:office:word\" "
               "xmlns:m=\"http://schemas.microsoft.com/office/2004/12/omml\""
               " xmlns=\"http://www.w3.org/TR/REC-html40\">",
               "<head>",
               "<meta http-equiv=\"Content-Type\" content=\"text/html; "
               "charset=%s\">" % charset,
               "<meta name=\"Generator\" content=\"Microsoft Word 15 "
               "(filtered medium)\">",
               OUTLOOK_STYLE, "</head>",
               "<body lang=\"EN-US\" link=\"#0563C1\" vlink=\"#954F72\" "
               "style=\"word-wrap:break-word\">",
               "<div class=\"WordSection1\">"]
        quoting = False
        for ln in text.split("\n"):
            if ln.startswith("On ") and ln.endswith(" wrote:"):
                quoting = True
                out.append("<div style=\"border:none;border-top:solid "
                           "#E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in\">"
                           "<p class=\"MsoNormal\"><b>From:</b> %s<o:p>"
                           "</o:p></p></div>" % html_escape(ln[3:-7]))
                continue
            if quoting:
                ln = ln.lstrip("> ")
            out.append("<p class=\"MsoNormal\">%s<o:p></o:p></p>"
                       % (html_escape(ln) if ln else "&nbsp;"))
        for cid, w in cids:
            out.append("<p class=\"MsoNormal\"><img width=\"%d\" height=\"%d\""
                       " style=\"width:%d.0in\" id=\"Picture_x0020_1\" "
                       "src=\"cid:%s\" alt=\"image\"><o:p></o:p></p>"
                       % (w, w // 2, w // 96, cid))
        out.append("</div>")
        out.append("</body>")
        out.append("</html>")
        return "\n".join(out) + "\n"

    def body(self, style, charset, quote, cids=(), forward=None):
        """The main body: -> (Part, text, html)."""
        r = self.rng
        flowed = style == "plain" and charset == "utf-8" and \
            r.random() < 0.3
        text = self.body_text(charset, quote, forward, flowed)
        if style == "plain":
            cte = {"utf-8": self.pick(["7bit", "8bit", "quoted-printable",
                                       "base64"]),
                   "iso-8859-1": self.pick(["quoted-printable", "8bit"]),
                   "windows-1252": "quoted-printable",
                   "koi8-r": self.pick(["8bit", "base64"]),
                   "gb2312": "base64",
                   "shift_jis": self.pick(["base64", "8bit"]),
                   "us-ascii": "7bit"}[charset]
            if cte == "7bit" and any(ord(c) > 127 for c in text):
                cte = "8bit"
            if flowed:
                cte = "8bit" if cte in ("7bit", "base64") else cte
            p, t = self.text_part(text, charset, cte, flowed)
            return p, t, None
        if style == "gmail":
            tcs = charset
            ascii_only = all(ord(c) < 128 for c in text)
            tp, t = self.text_part(text, tcs, self.pick(
                ["quoted-printable", "7bit", "base64"] if ascii_only
                else ["quoted-printable", "base64"]))
            html = self.gmail_html(text, cids)
            hp, h = self.html_part(html, tcs, "quoted-printable")
        else:  # outlook
            tcs = charset
            tp, t = self.text_part(text, tcs, "quoted-printable")
            html = self.outlook_html(text, cids, tcs)
            hp, h = self.html_part(html, tcs, self.pick(
                ["quoted-printable", "quoted-printable", "base64"]))
        b = self.boundary(style)
        alt = Part(["Content-Type: multipart/alternative; "
                    "boundary=\"%s\"" % b],
                   children=[tp, hp], boundary=b)
        return alt, t, h  # with cids, the caller wraps it in related

    # -- attachments --

    def blob(self, kind, size):
        r = self.rng
        head = {"pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
                "zip": b"PK\x03\x04\x14\x00\x06\x00",
                "docx": b"PK\x03\x04\x14\x00\x06\x00",
                "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"}[kind]
        tail = b"\n%%EOF\n" if kind == "pdf" else b""
        n = max(0, size - len(head) - len(tail))
        return head + r.randbytes(n) + tail

    def csv_blob(self, size):
        r = self.rng
        rows = [b"date,order,customer,amount,currency,status"]
        total = len(rows[0])
        while total < size:
            row = ("2025-%02d-%02d,%d,%s %s,%d.%02d,EUR,%s" % (
                r.randint(1, 12), r.randint(1, 28), r.randint(10000, 99999),
                self.pick(FIRST), self.pick(LAST), r.randint(1, 9999),
                r.randint(0, 99), self.pick(["paid", "open", "refunded"])
            )).encode("ascii")
            rows.append(row)
            total += len(row) + 2
        return b"\r\n".join(rows) + b"\r\n"

    def att_size(self, big=False):
        r = self.rng
        if big:  # a fixed schedule of multi-MB files keeps the size stable
            return r.randint(1000000, 3200000)
        x = r.random()
        if x < 0.66:
            return r.randint(2000, 30000)
        if x < 0.9:
            return r.randint(30000, 90000)
        return r.randint(90000, 360000)

    def filename(self, ext):
        """-> (header params text, expected name)."""
        r = self.rng
        x = r.random()
        stem = self.pick(["invoice", "screenshot", "report", "contract",
                          "log", "receipt", "scan", "photo", "export"])
        if x < 0.45:
            name = "%s-%d.%s" % (stem, r.randint(1, 9999), ext)
            return ("filename=\"%s\"" % name, "name=\"%s\"" % name), name
        if x < 0.6:
            name = "%s %s %d.%s" % (self.pick(["Scan", "Copy of", "Final"]),
                                    stem, r.randint(1, 99), ext)
            return ("filename=\"%s\"" % name, "name=\"%s\"" % name), name
        cs = self.pick(["utf-8", "utf-8", "utf-8", "iso-8859-1"])
        base = {"utf-8": self.pick(["Rechnung März", "Facture décembre",
                                    "請求書", "счёт-фактура", "发票",
                                    "Café menu — final", "Übersicht 📎"]),
                "iso-8859-1": self.pick(["Rechnung März", "Reçu n°",
                                         "Año fiscal", "Übersicht"])}[cs]
        name = "%s %d.%s" % (base, r.randint(1, 999), ext)
        if x < 0.85:  # RFC 2231 in the disposition, 2047 in the type
            return (rfc2231(r, cs, name),
                    "name=\"%s\"" % encode_words(r, cs, name, "B1")), name
        # Outlook and others: an RFC 2047 word inside quotes, both params.
        w = encode_words(r, cs, name, self.pick(["B1", "Q1"]))
        return ("filename=\"%s\"" % w, "name=\"%s\"" % w), name

    def attachment(self, big=False):
        """-> (Part, expected attachment)."""
        r = self.rng
        kind = self.pick(["pdf", "pdf", "pdf", "zip", "png", "jpg", "docx",
                          "csv"])
        if big and kind == "csv":
            kind = "pdf"
        size = self.att_size(big)
        if kind == "csv":
            data = self.csv_blob(min(size, 200000))
        else:
            data = self.blob(kind, size)
        ctype = {"pdf": "application/pdf", "zip": "application/zip",
                 "png": "image/png", "jpg": "image/jpeg",
                 "docx": "application/vnd.openxmlformats-officedocument."
                         "wordprocessingml.document",
                 "csv": "text/csv"}[kind]
        (dparam, tparam), name = self.filename(kind)
        ctype_hdr = ctype if r.random() < 0.8 else ctype.upper()
        hdrs = ["Content-Type: %s; %s" % (ctype_hdr, tparam)]
        if kind == "csv":
            hdrs[0] = "Content-Type: %s; charset=utf-8; %s" % (ctype, tparam)
        if r.random() < 0.3:
            hdrs.append("Content-Description: %s" % (
                name if all(ord(c) < 128 for c in name) else "attachment"))
        hdrs.append("Content-Disposition: attachment;" + CRLF + " " + dparam)
        hdrs.append("Content-Transfer-Encoding: base64")
        enc = b64_lines(data)
        self.b64_bytes += len(enc)
        return Part(hdrs, enc), {
            "filename": name, "content_type": ctype, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}

    def inline_image(self, style, n):
        r = self.rng
        ext = self.pick(["png", "png", "jpg"])
        data = self.blob(ext, r.randint(3000, 60000))
        ctype = "image/png" if ext == "png" else "image/jpeg"
        if style == "outlook":
            name = "image%03d.%s" % (n, ext)
            cid = "%s@01DB%04X.%08X" % (name, r.getrandbits(16),
                                        r.getrandbits(32))
        else:
            name = self.pick(["image.png", "screenshot.png", "logo.png",
                              "Screenshot 2025-01-06 at 10.02.03.png"])
            name = name.rsplit(".", 1)[0] + "." + ext
            cid = "ii_%s" % "".join(r.choice("abcdefghijklmnop0123456789")
                                    for _ in range(11))
        hdrs = ["Content-Type: %s; name=\"%s\"" % (ctype, name),
                "Content-Disposition: inline; filename=\"%s\"" % name,
                "Content-Transfer-Encoding: base64",
                "Content-ID: <%s>" % cid]
        if style != "outlook":
            hdrs.append("X-Attachment-Id: %s" % cid)
        enc = b64_lines(data)
        self.b64_bytes += len(enc)
        return Part(hdrs, enc), {
            "filename": name, "content_type": ctype, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}, cid

    # -- whole messages --

    def subject(self, charset, prefix):
        """-> (header text, expected)."""
        r = self.rng
        if charset in ("utf-8", "us-ascii") and r.random() < 0.55 or \
                charset == "us-ascii":
            s = self.pick(SUBJECTS)
            if r.random() < 0.3:
                s = "[Ticket #%d] %s" % (r.randint(10000, 99999), s)
            if r.random() < 0.2:  # long, folded plain subject
                tail = " and the %s" % self.pick(SUBJECTS).lower()
                return prefix + s + CRLF + tail, prefix + s + tail
            return prefix + s, prefix + s
        phrase = self.pick(INTL[charset][0])
        x = r.random()
        if x < 0.45:
            style = "Bn"       # several (padded) base64 words
        elif x < 0.65:
            style = "Qn"
        elif x < 0.85:
            style = "B1"
        else:
            style = "Q1"
        enc = encode_words(r, charset, phrase, style)
        if r.random() < 0.25:
            tail = " (order %d)" % r.randint(1000, 9999)
            return prefix + enc + tail, prefix + phrase + tail
        if r.random() < 0.2:
            lead = "[Ticket #%d] " % r.randint(10000, 99999)
            return prefix + lead + enc, prefix + lead + phrase
        return prefix + enc, prefix + phrase

    def envelope(self, style, charset, reply):
        """Top-level headers common to every message -> (headers, exp)."""
        r = self.rng
        inbound = r.random() < 0.7
        if inbound:
            fh, fe = self.person(charset if r.random() < 0.4 else None)
            to_h, to_e = AGENTS[0][1], [{"name": None,
                                          "email": AGENTS[0][1]}]
            if r.random() < 0.3:
                to_h = "\"%s\" <%s>" % AGENTS[0]
                to_e = [{"name": AGENTS[0][0], "email": AGENTS[0][1]}]
        else:
            a = self.pick(AGENTS)
            fh = "\"%s\" <%s>" % a if "(" in a[0] else "%s <%s>" % a
            fe = {"name": a[0], "email": a[1]}
            to_h, to_e = self.addr_list(r.randint(1, 3), charset)
        cc_h, cc_e = (None, [])
        if r.random() < 0.35:
            cc_h, cc_e = self.addr_list(r.randint(1, 4), charset)
        dh, de = self.date()
        mid = self.msgid(style if style in ("gmail", "outlook") else "other")
        exp = {"from": [fe], "to": to_e, "cc": cc_e, "date": de,
               "message_id": mid, "in_reply_to": None, "references": []}
        hdrs = self.noise_headers(style)
        hdrs += ["From: %s" % fh, "To: %s" % to_h]
        if cc_h:
            hdrs.append("Cc: %s" % cc_h)
        hdrs.append("Date: %s" % dh)
        hdrs.append("Message-ID: <%s>" % mid)
        prefix = ""
        if reply is not None:
            pid, prefs, psubj = reply
            refs = (prefs + [pid])[-8:]
            exp["in_reply_to"] = pid
            exp["references"] = refs
            hdrs.append("In-Reply-To: <%s>" % pid)
            hdrs.append("References: " + (CRLF + " ").join(
                "<%s>" % x for x in refs))
            prefix = self.pick(["Re: ", "RE: ", "AW: ", "Re: "])
        return hdrs, exp, prefix, dh, fe

    def message(self, n):
        """-> (bytes, expected dict) of message number n."""
        r = self.rng
        style = self.pick(["plain", "plain", "gmail", "gmail", "outlook"])
        charset = self.pick(["utf-8", "utf-8", "utf-8", "us-ascii",
                             "iso-8859-1", "windows-1252", "koi8-r",
                             "gb2312", "shift_jis"])
        if style == "outlook" and charset in ("utf-8", "us-ascii") and \
                r.random() < 0.5:
            charset = "windows-1252"
        with_atts = r.random() < 0.5
        big = n % 100 == 50
        with_atts = with_atts or big
        reply = None
        reply_q = None
        if self.threads and r.random() < 0.65:
            pid, prefs, psubj, ptext, pdate, pname = self.pick(
                self.threads[-200:])
            reply = (pid, prefs, psubj)
            reply_q = (pdate, pname, ptext)
        hdrs, exp, prefix, dh, fe = self.envelope(style, charset, reply)
        kind = style
        forward = None
        inline_fwd = None
        if with_atts:
            forward = r.random() < 0.15
        elif r.random() < 0.08:  # inline forward: text only
            kind += "+inline-fwd"
            _, fwd_from = self.person()
            inline_fwd = (self.date()[0], fwd_from["email"],
                          self.pick(SUBJECTS), self.body_text("utf-8"))
            prefix = "Fwd: "
        if forward:
            prefix = self.pick(["Fwd: ", "FW: ", "Fw: "])
        sh, se = self.subject(charset, prefix)
        hdrs.append("Subject: %s" % sh)
        exp["subject"] = se
        tname = (fe["name"] or fe["email"])

        atts = []
        cids = []
        related = []
        if with_atts and style != "plain" and not forward and \
                r.random() < 0.35:
            for i in range(r.randint(1, 3)):
                p, a, cid = self.inline_image(style, i + 1)
                related.append((p, a))
                cids.append((cid, r.randint(200, 640)))
        body, text, html = self.body(style, charset, reply_q, cids,
                                     inline_fwd)
        if related:
            b = self.boundary(style)
            body = Part(["Content-Type: multipart/related;" + CRLF +
                         "\tboundary=\"%s\";" % b + CRLF +
                         "\ttype=\"multipart/alternative\""],
                        children=[body] + [p for p, _ in related],
                        boundary=b)
            atts.extend(a for _, a in related)
            kind += "+related"
        top = body
        if with_atts and (not related or r.random() < 0.5):
            files = []
            if forward:
                fwd_part, fa = self.forwarded(n)
                files.append((fwd_part, fa))
                kind += "+rfc822"
            nfiles = self.pick([1, 1, 1, 1, 2, 2, 3]) if not forward \
                else r.randint(0, 1)
            for i in range(max(nfiles, 1 if big else 0)):
                files.append(self.attachment(big and i == 0))
            if files:
                kind += "+files"
                b = self.boundary(style)
                top = Part(["Content-Type: multipart/mixed;" + CRLF +
                            " boundary=\"%s\"" % b],
                           children=[body] + [p for p, _ in files],
                           boundary=b,
                           preamble="This is a multi-part message in MIME "
                           "format." if r.random() < 0.4 else "")
                atts.extend(a for _, a in files)
        hdrs.append("MIME-Version: 1.0")
        hdrs.extend(top.headers)
        msg = Part(hdrs, top.body, top.children, top.boundary, top.preamble)
        data = msg.serialize()
        exp.update({"kind": kind, "text": text, "html": html,
                    "attachments": atts})
        self.threads.append((exp["message_id"], exp["references"], se,
                             text, dh, tname))
        return data, exp

    def forwarded(self, n):
        """A message/rfc822 part holding a smaller message."""
        r = self.rng
        style = self.pick(["plain", "gmail", "outlook"])
        charset = self.pick(["utf-8", "us-ascii", "iso-8859-1", "koi8-r"])
        hdrs, _, _, _, _ = self.envelope(style, charset, None)
        sh, _ = self.subject(charset, "")
        hdrs.append("Subject: %s" % sh)
        body, _, _ = self.body(style, charset, None)
        inner = body
        if r.random() < 0.4:
            ap, _ = self.attachment()
            b = self.boundary(style)
            inner = Part(["Content-Type: multipart/mixed; boundary=\"%s\""
                          % b], children=[body, ap], boundary=b)
        hdrs.append("MIME-Version: 1.0")
        hdrs.extend(inner.headers)
        m = Part(hdrs, inner.body, inner.children, inner.boundary)
        data = m.serialize()
        x = r.random()
        if x < 0.4:
            name = "Original message %d.eml" % r.randint(1, 99)
            ph = ["Content-Type: message/rfc822; name=\"%s\"" % name,
                  "Content-Disposition: attachment; filename=\"%s\"" % name]
        elif x < 0.7:
            name = None
            ph = ["Content-Type: message/rfc822",
                  "Content-Disposition: inline"]
        else:
            name = None
            ph = ["Content-Type: message/rfc822"]
        if any(b > 127 for b in data):
            ph.append("Content-Transfer-Encoding: 8bit")
        return Part(ph, data), {
            "filename": name, "content_type": "message/rfc822",
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20250106)
    ap.add_argument("out")
    args = ap.parse_args(argv)
    msgs = os.path.join(args.out, "msgs")
    os.makedirs(msgs, exist_ok=True)
    g = Gen(args.seed)
    total = 0
    noatt = 0
    largest = 0
    tmp = os.path.join(args.out, "expected.jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as ex:
        for i in range(1, args.count + 1):
            data, exp = g.message(i)
            name = "%05d.eml" % i
            with open(os.path.join(msgs, name), "wb") as f:
                f.write(data)
            total += len(data)
            largest = max(largest, len(data))
            noatt += not exp["attachments"]
            rec = {"file": name}
            rec.update(exp)
            order = ["file", "kind", "subject", "from", "to", "cc", "date",
                     "message_id", "in_reply_to", "references", "text",
                     "html", "attachments"]
            ex.write(json.dumps({k: rec[k] for k in order},
                                ensure_ascii=False, sort_keys=False) + "\n")
    os.replace(tmp, os.path.join(args.out, "expected.jsonl"))
    print("%d messages (%d without attachments), %.1f MB, %.0f%% base64 "
          "attachments, largest %.1f MB, in %s"
          % (args.count, noatt, total / 1e6, 100.0 * g.b64_bytes / total,
             largest / 1e6, msgs), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
