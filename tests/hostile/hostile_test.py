#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile-input suite: every case of ../shared/vectors/gen_hostile_mime.py
through `mailroom parse`, one process per case, with time and memory bounds.

    hostile_test.py --mailroom BUILD/mailroom [--asan] [--shared DIR]
                    [--only NAME,...] [--keep] [--workdir DIR]

The cases (50, about 95 MB, including the 100,000-level nesting, the 10 MB
header line, 100,000 headers and the 50 MB message) are generated at test
time into a temporary folder; the shared folder is looked for in --shared,
$MR_SHARED, then <repo>/../shared. Without it the suite is skipped (exit 77).

What is checked is what ../shared/vectors/README.md calls correct handling,
as far as the parse stage can show it (storage, blocking, scanning and
tenancy are later stages):
  - every case: exit 0 (or 65 where the README allows a refusal; never a
    signal), nothing from a sanitizer on stderr, within the time and memory
    bounds below; stdout one JSON object, strict UTF-8, with every field of
    docs/event.md; warnings "code: detail" with documented codes; every
    safe_filename bounded, without separators, controls or bidi marks;
    subject, addresses, ids and header values without CR/LF/NUL and
    bounded by the limits of mime.h;
  - per case, the specific promise (a warning that must be there, a hash
    that must match, a field that must not appear...): see CHECKS below.

Bounds. Time: 2 s per case for a normal build. An ASan+UBSan build runs
roughly 2-5x slower and every allocation pays for redzones and quarantine,
so it gets 10x (20 s); $MR_HOSTILE_TIME_SCALE multiplies both (slow or busy
machines). Memory: peak RSS (os.wait4; it includes the runner's own RSS,
which Linux charges to the child from before its exec) at most the input size (the file is
mmap'ed and its pages count in RSS) plus 64 MiB, and an address-space limit
(RLIMIT_AS) of 1 GiB, for a normal build. Under ASan the address space
holds terabytes of shadow reservations (so no RLIMIT_AS) and RSS includes
shadow memory, redzones and up to 256 MiB of quarantine of freed blocks, so
the RSS bound is 4 x input + 768 MiB: it still catches memory proportional
to nesting depth, header count or line length times a constant, not small
leaks.

Exit 0 when every case passed, 1 otherwise, 77 when skipped.
"""

import argparse
import email
import email.policy
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
KiB = 1 << 10

# From docs/event.md.
REQUIRED_KEYS = [
    "id", "type", "tenant", "inbox", "message_id", "message_id_derived",
    "in_reply_to", "references", "from", "sender", "reply_to", "to", "cc",
    "bcc", "envelope", "subject", "date", "received_at", "text", "html",
    "html_sanitized", "stripped_text", "headers", "attachments", "report",
    "auth", "auto", "warnings",
]
WARNING_CODES = {
    "header_garbage", "header_no_blank_line", "header_limit",
    "header_truncated", "header_bare_cr", "nul_byte", "charset_unknown",
    "charset_invalid", "charset_detected", "encoded_word_invalid",
    "address_invalid", "date_invalid", "date_no_zone", "message_id_missing",
    "message_id_invalid", "message_id_duplicate", "references_truncated",
    "boundary_missing", "boundary_unclosed", "boundary_too_long",
    "boundary_duplicate", "depth_limit", "part_limit", "base64_invalid",
    "base64_truncated", "qp_invalid", "cte_unknown", "params_invalid",
    "size_limit", "uuencode",
}
# Not in docs/event.md but written by event.c when more than the cap of
# warnings were raised; accepted, and reported as a note.
EXTRA_WARNING_CODES = {"warnings_truncated"}

# Defaults of mime.h (struct mr_mime_limits).
MAX_FIELD_BYTES = 64 * KiB
MAX_REFERENCES = 100
MAX_ID_BYTES = 998
MAX_SAFE_NAME = 255
# A repaired field may grow: each invalid byte of the (capped) input can
# become U+FFFD, three bytes.
MAX_FIELD_OUT = 3 * MAX_FIELD_BYTES

BIDI = set(chr(c) for c in [0x061C, 0x200E, 0x200F] + list(range(0x202A, 0x202F))
           + list(range(0x2066, 0x206A)))
WIN_RESERVED = {"con", "prn", "aux", "nul"} | {"com%d" % i for i in range(1, 10)} \
    | {"lpt%d" % i for i in range(1, 10)}
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "SUMMARY: ", "==ERROR")

# Cases where the README allows a clear refusal (exit 65) instead of a
# bounded parse; "must65" must be refused.
MAY_REFUSE = {"header-line-10mb-subject", "headers-100000-fields",
              "header-folding-100000-continuation-lines", "message-id-absurdly-long"}
MUST_REFUSE = {"empty-message"}


class Fail(Exception):
    pass


class Result:
    def __init__(self, name):
        self.name = name
        self.fails = []
        self.notes = []
        self.exit = None
        self.ms = 0
        self.rss_mb = 0.0

    def fail(self, msg):
        self.fails.append(msg)

    def note(self, msg):
        self.notes.append(msg)

    def need(self, cond, msg):
        if not cond:
            self.fails.append(msg)
        return cond


# ---------------------------------------------------------------------------
# running

def find_shared(arg):
    cands = []
    if arg:
        cands.append(arg)
    if os.environ.get("MR_SHARED"):
        cands.append(os.environ["MR_SHARED"])
    here = os.path.dirname(os.path.abspath(__file__))
    cands.append(os.path.join(here, "..", "..", "..", "shared"))
    for c in cands:
        if os.path.isfile(os.path.join(c, "vectors", "gen_hostile_mime.py")):
            return os.path.abspath(c)
    return None


def is_asan_binary(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return b"__asan_init" in data
    except OSError:
        return False


def own_rss_kb():
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_parse(binary, path, time_limit, as_limit, workdir, extra_env):
    """Runs `binary parse path`; returns (status, exit, ms, rss_kb, out, err).
    status: "exit", "signal" or "timeout"."""
    out_path = os.path.join(workdir, "stdout")
    err_path = os.path.join(workdir, "stderr")

    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_limit:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    env = dict(os.environ)
    env.update(extra_env)
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "parse", path], stdin=subprocess.DEVNULL,
                             stdout=fo, stderr=fe, env=env, preexec_fn=limits)
        deadline = t0 + time_limit
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() > deadline:
                timed_out = True
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.002)
        ms = int((time.monotonic() - t0) * 1000)
        p.returncode = 0  # reaped by wait4; keep Popen from waiting again
    with open(out_path, "rb") as f:
        out = f.read()
    with open(err_path, "rb") as f:
        err = f.read()
    if timed_out:
        return "timeout", None, ms, ru.ru_maxrss, out, err
    if os.WIFSIGNALED(status):
        return "signal", -os.WTERMSIG(status), ms, ru.ru_maxrss, out, err
    return "exit", os.WEXITSTATUS(status), ms, ru.ru_maxrss, out, err


def parse_json(res, out):
    """stdout -> event dict, or None with failures recorded."""
    try:
        text = out.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        res.fail("stdout is not valid UTF-8 at byte %d" % e.start)
        return None

    def no_constants(x):
        raise ValueError("non-JSON constant %s" % x)
    try:
        ev = json.loads(text, parse_constant=no_constants)
    except ValueError as e:
        res.fail("stdout is not one JSON value: %s" % str(e)[:120])
        return None
    if not text.endswith("\n"):
        res.note("output does not end with a newline")
    if not isinstance(ev, dict):
        res.fail("top level is not an object")
        return None
    return ev


# ---------------------------------------------------------------------------
# generic checks on every event

def walk_strings(x, path="$"):
    if isinstance(x, str):
        yield path, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from walk_strings(k, path + ".<key>")
            yield from walk_strings(v, path + "." + k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from walk_strings(v, "%s[%d]" % (path, i))


def ubytes(s):
    return len(s.encode("utf-8", "surrogatepass"))


def has_ctl(s, allow=""):
    return any((ord(c) < 0x20 and c not in allow) or 0x7F <= ord(c) <= 0x9F for c in s)


def warnings_of(ev):
    w = ev.get("warnings")
    return w if isinstance(w, list) else []


def warning_codes(ev):
    return [w.split(":", 1)[0] for w in warnings_of(ev) if isinstance(w, str)]


def ext_of(name):
    base = re.split(r"[/\\]", name)[-1]
    if "." not in base.strip("."):
        return None
    return base.rsplit(".", 1)[1].lower()


def check_safe_name(res, i, a):
    s = a.get("safe_filename")
    if s is None:
        return
    where = "attachment %d safe_filename %r" % (i, s[:80])
    if not isinstance(s, str):
        res.fail("attachment %d safe_filename is not a string" % i)
        return
    res.need(s.strip(" .") != "", where + ": empty or dots only")
    res.need("/" not in s and "\\" not in s, where + ": has a path separator")
    res.need(not has_ctl(s), where + ": has a control character")
    res.need(not (set(s) & BIDI), where + ": has a bidi control")
    res.need(ubytes(s) <= MAX_SAFE_NAME, where + ": %d bytes (over %d)" % (ubytes(s), MAX_SAFE_NAME))
    res.need(not re.match(r"^[A-Za-z]:", s), where + ": starts with a drive letter")
    res.need(s.split(".")[0].strip().lower() not in WIN_RESERVED,
             where + ": a Windows reserved name")
    res.need(not s.endswith(".") and not s.endswith(" "),
             where + ": ends with a dot or space (Windows strips it)")
    res.need(".." != s, where + ": is '..'")
    if ":" in s:
        res.note(where + ": has ':' (invalid on Windows)")


def check_event(res, ev):
    missing = [k for k in REQUIRED_KEYS if k not in ev]
    res.need(not missing, "missing fields: %s" % ", ".join(missing))
    res.need(ev.get("type") == "email.received", "type is %r" % ev.get("type"))
    for k in ("id", "tenant", "inbox", "envelope", "received_at", "auth"):
        if k in ev:
            res.need(ev[k] is None, "%s should be null from parse" % k)
    # The content stage runs in parse too: its output is a string or null,
    # and what it made of hostile HTML holds no script.
    for k in ("html_sanitized", "stripped_text"):
        res.need(ev.get(k) is None or isinstance(ev[k], str),
                 "%s is neither a string nor null" % k)
    hs = ev.get("html_sanitized") or ""
    res.need("<script" not in hs.lower(), "html_sanitized holds <script")

    # Every string: encodable UTF-8 (no lone surrogate escapes).
    for path, s in walk_strings(ev):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            res.fail("%s holds a lone surrogate (\\u escape)" % path)

    mid = ev.get("message_id")
    if res.need(isinstance(mid, str) and mid != "", "message_id is not a non-empty string"):
        res.need(ubytes(mid) <= MAX_ID_BYTES + 64, "message_id is %d bytes" % ubytes(mid))
        res.need(not has_ctl(mid) and " " not in mid, "message_id has controls or spaces: %r" % mid[:80])
        if ev.get("message_id_derived") is True:
            res.need(re.fullmatch(r"derived-[0-9a-f]+@mailroom\.invalid", mid) is not None,
                     "derived message_id %r is not derived-<hex>@mailroom.invalid" % mid[:80])
    res.need(isinstance(ev.get("message_id_derived"), bool), "message_id_derived is not a bool")

    refs = ev.get("references")
    if res.need(isinstance(refs, list), "references is not a list"):
        res.need(len(refs) <= MAX_REFERENCES + 16,
                 "references has %d ids (cap %d + In-Reply-To extras)" % (len(refs), MAX_REFERENCES))
        for r in refs:
            if not (isinstance(r, str) and 0 < ubytes(r) <= MAX_ID_BYTES and not has_ctl(r)):
                res.fail("bad references entry %r" % (r if not isinstance(r, str) else r[:60]))
                break
    irt = ev.get("in_reply_to")
    if irt is not None:
        res.need(isinstance(irt, str) and 0 < ubytes(irt) <= MAX_ID_BYTES and not has_ctl(irt),
                 "bad in_reply_to %r" % (irt[:60] if isinstance(irt, str) else irt))

    subj = ev.get("subject")
    if subj is not None:
        if res.need(isinstance(subj, str), "subject is not a string"):
            res.need(ubytes(subj) <= MAX_FIELD_OUT, "subject is %d bytes (field cap %d)" % (ubytes(subj), MAX_FIELD_BYTES))
            res.need("\r" not in subj and "\n" not in subj, "subject has CR/LF: %r" % subj[:120])
            res.need("\0" not in subj, "subject has NUL")

    # Addresses.
    def addrs():
        for k in ("from", "sender"):
            if ev.get(k) is not None:
                yield k, ev[k]
        for k in ("reply_to", "to", "cc", "bcc"):
            v = ev.get(k)
            if not isinstance(v, list):
                res.fail("%s is not a list" % k)
                continue
            for i, a in enumerate(v):
                yield "%s[%d]" % (k, i), a
    for where, a in addrs():
        if not isinstance(a, dict) or "email" not in a or "name" not in a:
            res.fail("%s is not an address object: %r" % (where, a))
            continue
        for f in ("email", "name", "raw", "group"):
            v = a.get(f)
            if isinstance(v, str):
                res.need("\r" not in v and "\n" not in v and "\0" not in v,
                         "%s.%s has CR/LF/NUL: %r" % (where, f, v[:80]))
                res.need(ubytes(v) <= MAX_FIELD_OUT, "%s.%s is %d bytes" % (where, f, ubytes(v)))

    # Headers: unfolded, bounded.
    hd = ev.get("headers")
    if res.need(isinstance(hd, dict), "headers is not an object"):
        for name, v in hd.items():
            res.need(name == name.lower(), "header name %r not lower-case" % name[:60])
            vals = v if isinstance(v, list) else [v]
            for x in vals:
                if not isinstance(x, str):
                    res.fail("headers[%r] holds a non-string" % name[:60])
                    continue
                if "\r" in x or "\n" in x:
                    res.fail("headers[%r] not unfolded (CR/LF in value %r)" % (name[:60], x[:80]))
                if ubytes(x) > MAX_FIELD_OUT:
                    res.fail("headers[%r] is %d bytes (field cap %d)" % (name[:60], ubytes(x), MAX_FIELD_BYTES))

    # Warnings.
    w = ev.get("warnings")
    if res.need(isinstance(w, list), "warnings is not a list"):
        for x in w:
            if not isinstance(x, str) or ":" not in x:
                res.fail("warning %r is not 'code: detail'" % (x,))
                continue
            code = x.split(":", 1)[0]
            if code in EXTRA_WARNING_CODES:
                res.note("undocumented warning code %r" % code)
            elif code not in WARNING_CODES:
                res.fail("unknown warning code %r" % code)

    # Attachments.
    atts = ev.get("attachments")
    if res.need(isinstance(atts, list), "attachments is not a list"):
        for i, a in enumerate(atts):
            if not isinstance(a, dict):
                res.fail("attachment %d is not an object" % i)
                continue
            for k in ("id", "part", "filename", "safe_filename", "content_type",
                      "detected_type", "size", "sha256", "disposition", "content_id",
                      "url", "scan"):
                if k not in a:
                    res.fail("attachment %d lacks %s" % (i, k))
            sha = a.get("sha256")
            res.need(isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha) is not None,
                     "attachment %d sha256 %r" % (i, sha))
            res.need(isinstance(a.get("size"), int) and a["size"] >= 0, "attachment %d size %r" % (i, a.get("size")))
            ct = a.get("content_type")
            res.need(isinstance(ct, str) and re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ct) is not None,
                     "attachment %d content_type %r not lower-case type/subtype" % (i, ct))
            res.need(a.get("disposition") in ("attachment", "inline"),
                     "attachment %d disposition %r" % (i, a.get("disposition")))
            check_safe_name(res, i, a)
            fn = a.get("filename")
            if isinstance(fn, str):
                res.need(ubytes(fn) <= MAX_FIELD_OUT, "attachment %d filename is %d bytes" % (i, ubytes(fn)))
    for k in ("text", "html"):
        v = ev.get(k)
        if v is not None and not isinstance(v, str):
            res.fail("%s is not a string or null" % k)
    if isinstance(ev.get("text"), str) and "\r" in ev["text"]:
        res.fail("text has CR (line endings must be \\n)")


# ---------------------------------------------------------------------------
# per-case checks

def sha(b):
    return hashlib.sha256(b).hexdigest()


def header_value(raw, name):
    m = re.search(rb"(?im)^" + re.escape(name) + rb":[ \t]*([^\r\n]*)", raw)
    return m.group(1).decode("ascii", "replace").strip() if m else None


def expected_attachments(raw):
    """(filename, sha256, size) of the attachment parts of a well-formed
    message, decoded by Python's email package (only used on cases whose
    MIME structure is sound; it is not ground truth for broken ones)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        fn = part.get_filename() or part.get_param("name")
        disp = (part.get("Content-Disposition") or "").lower()
        if fn is None and "attachment" not in disp and part.get("Content-ID") is None:
            continue
        data = part.get_payload(decode=True) or b""
        out.append((fn, sha(data), len(data)))
    return out


def atts(ev):
    a = ev.get("attachments")
    return a if isinstance(a, list) else []


def text(ev):
    t = ev.get("text")
    return t if isinstance(t, str) else ""


def need_warning(res, ev, *codes):
    have = warning_codes(ev)
    if not any(c in have for c in codes):
        res.fail("no %s warning (warnings: %s)" % ("/".join(codes), "; ".join(warnings_of(ev))[:300] or "none"))


def need_attachments_like(res, ev, raw):
    got = [(a.get("sha256"), a.get("size")) for a in atts(ev)]
    for fn, h, n in expected_attachments(raw):
        if (h, n) in got:
            got.remove((h, n))
        else:
            res.fail("attachment %r (%d bytes, sha256 %s...) missing or decoded differently"
                     % (fn, n, h[:12]))


def need_extensions(res, ev, exts):
    """exts: the final extension each named attachment's safe name must
    keep, in order; None where any (or none) will do."""
    named = [a for a in atts(ev) if a.get("filename") is not None or a.get("safe_filename") is not None]
    got = [ext_of(a.get("safe_filename") or "") for a in named]
    if len(got) != len(exts) or any(e is not None and g != e for g, e in zip(got, exts)):
        res.fail("final extensions of safe names %s, expected %s (names: %s)"
                 % (got, exts, [a.get("safe_filename") for a in named]))


def c_deep(res, ev, raw, ctx):
    need_warning(res, ev, "depth_limit")


def c_rfc822_deep(res, ev, raw, ctx):
    need_warning(res, ev, "depth_limit")
    if not any(a.get("content_type") == "message/rfc822" for a in atts(ev)):
        res.note("no message/rfc822 attachment for the forwarded message")


def c_never_closes(res, ev, raw, ctx):
    need_warning(res, ev, "boundary_unclosed")
    res.need("first part" in text(ev), "text lost the first part: %r" % text(ev)[:80])
    data = random.Random(7).randbytes(3000)
    res.need(any(a.get("sha256") == sha(data) and a.get("size") == 3000 for a in atts(ev)),
             "data.bin (3000 bytes up to EOF) missing or wrong: %s"
             % [(a.get("filename"), a.get("size")) for a in atts(ev)])


def c_undeclared(res, ev, raw, ctx):
    if "hello" not in text(ev) and not warnings_of(ev):
        res.fail("the body text was dropped without a warning")


def c_b64_boundary(res, ev, raw, ctx):
    want = header_value(raw, b"X-Expected-SHA256")
    res.need(any(a.get("sha256") == want and a.get("size") == 4096 for a in atts(ev)),
             "blob.bin sha256 != X-Expected-SHA256 %s...: got %s"
             % (want[:12], [(a.get("size"), (a.get("sha256") or "")[:12]) for a in atts(ev)]))
    res.need(len(atts(ev)) == 1, "%d attachments, expected 1" % len(atts(ev)))


def c_prefix_line(res, ev, raw, ctx):
    t = text(ev)
    res.need("--frontier-not-really" in t and "line three" in t,
             "the '--frontier-not-really' line was not kept as content: %r" % t[:200])
    res.need("second part" in t, "the part after the whitespace-padded delimiter is missing: %r" % t[:200])
    res.need(not atts(ev), "%d attachments, expected none (2 text parts)" % len(atts(ev)))


def c_line_in_b64(res, ev, raw, ctx):
    data = random.Random(12).randbytes(2000)[:570]
    res.need(any(a.get("sha256") == sha(data) and a.get("size") == 570 for a in atts(ev)),
             "a.bin should end at the delimiter (570 bytes): got %s"
             % [(a.get("filename"), a.get("size")) for a in atts(ev)])
    res.need("after the cut" in text(ev), "the part after the delimiter was not parsed: %r" % text(ev)[:80])


def c_param_abuse(res, ev, raw, ctx):
    if text(ev).strip() == "second-boundary part":
        res.fail("the second boundary parameter won (documented choice: the first)")
    if not ({"boundary_too_long", "boundary_duplicate", "boundary_missing"} & set(warning_codes(ev))):
        res.note("no boundary_* warning for two boundaries / 200-char / empty boundary")


def c_no_boundary(res, ev, raw, ctx):
    need_warning(res, ev, "boundary_missing")
    res.need(text(ev).strip() != "" or atts(ev), "no body at all (neither text nor a part)")


def c_10mb_subject(res, ev, raw, ctx):
    need_warning(res, ev, "header_truncated")
    s = ev.get("subject") or ""
    res.need(s.startswith("AAAA"), "subject lost: %r" % s[:40])
    res.need("body" in text(ev), "fields after the long line lost (text %r)" % text(ev)[:40])


def c_many_headers(res, ev, raw, ctx):
    need_warning(res, ev, "header_limit")
    hd = ev.get("headers") or {}
    n = sum(1 for k in hd if k.startswith("x-filler-"))
    res.need(n <= 2000, "%d X-Filler fields kept (max_fields 2000)" % n)
    res.need(ev.get("subject") == "Many headers", "subject %r" % ev.get("subject"))
    res.need("body after 100000 headers" in text(ev), "body lost: %r" % text(ev)[:60])


def c_folding(res, ev, raw, ctx):
    need_warning(res, ev, "header_truncated")
    s = ev.get("subject") or ""
    res.need(s.startswith("start word00000 word00001"), "subject %r" % s[:40])
    res.need(text(ev).strip() == "body", "text %r" % text(ev)[:40])


def c_garbage(res, ev, raw, ctx):
    need_warning(res, ev, "header_garbage")
    frm = ev.get("from") or {}
    res.need(frm.get("email") == "alice@customer.example",
             "from should be the first From (alice), got %r" % frm.get("email"))
    s = ev.get("subject") or ""
    res.need(s == "space before colon" or s.startswith("Caf"), "subject %r" % s)


def c_headers_only(res, ev, raw, ctx):
    res.need(ev.get("subject") == "no body", "subject %r" % ev.get("subject"))
    res.need(ev.get("message_id") == "nobody@hostile.example", "message_id %r" % ev.get("message_id"))
    res.need(text(ev).strip() == "", "text %r" % text(ev)[:40])


def c_bad_b64(res, ev, raw, ctx):
    need_warning(res, ev, "base64_invalid", "base64_truncated")
    n = sum(1 for c in warning_codes(ev) if c.startswith("base64_"))
    if n < 3:
        res.note("only %d base64 warnings for 4+ broken parts" % n)
    good = (b"The quick brown fox jumps over the lazy dog. " * 50)[:1500]
    res.need(any(a.get("sha256") == sha(good) for a in atts(ev)), "longline.bin (2000-char line) not decoded to 1500 bytes")


def c_bad_qp(res, ev, raw, ctx):
    need_warning(res, ev, "qp_invalid")
    t = text(ev)
    res.need("upper \u00e9 ok" in t, "valid =C3=A9 not decoded: %r" % t[:120])
    res.need("x" * 500 + "soft break with spaces" in t, "soft line break not removed")
    res.need("soft break with spaces" in t and "end" in t, "text after the soft breaks lost")
    if "lower \u00e9 ok" not in t:
        res.note("lower-case hex =c3=a9 not decoded")


def c_unknown_cte(res, ev, raw, ctx):
    need_warning(res, ev, "cte_unknown")
    data = b"\x00\x01\x02binary\x00data\x00"
    res.need(any(a.get("sha256") == sha(data) and a.get("size") == len(data) for a in atts(ev)),
             "nul.bin (binary, 15 bytes with NULs) missing or changed: %s"
             % [(a.get("filename"), a.get("size")) for a in atts(ev)])
    # x-uuencode: passed through undecoded with a warning, or uudecoded
    # into an attachment update.exe (through the filename checks); never
    # the executable's bytes as body text.
    t = text(ev)
    res.need("MZ\x90" not in t and "This program cannot" not in t,
             "the uuencoded update.exe was decoded into the text body: %r" % t[:60])
    exe = [a for a in atts(ev) if (a.get("filename") or "").endswith("update.exe")]
    for a in exe:
        res.need((a.get("safe_filename") or "").endswith(".exe"), "uudecoded update.exe lost its .exe")
    if not exe:
        res.need("begin 644 update.exe" in t and
                 {"cte_unknown", "uuencode"} & set(warning_codes(ev)),
                 "x-uuencode part neither kept undecoded with a warning nor made "
                 "attachment update.exe (warnings: %s)" % "; ".join(warnings_of(ev)))


def c_charsets(res, ev, raw, ctx):
    need_warning(res, ev, "charset_unknown")
    t = text(ev)
    res.need("\u201csmart quotes\u201d and \u20ac euro" in t,
             "iso-8859-1 with C1 bytes not decoded as windows-1252: %r"
             % t[t.find("smart") - 10:t.find("smart") + 40] if "smart" in t else "smart-quotes part missing")


def c_utf7(res, ev, raw, ctx):
    h = ev.get("html") or ""
    res.need("<script>alert(1)</script>" in h and "+ADw-" not in h,
             "UTF-7 html not decoded: %r" % h[:100])
    t = text(ev)
    res.need("\ufffd" in t, "broken ISO-2022-JP gave no U+FFFD: %r" % t[:100])
    need_warning(res, ev, "charset_invalid")
    if "\u3053\u3093" not in t:
        res.note("valid ISO-2022-JP prefix (\u3053\u3093) not decoded")


def c_rfc2047(res, ev, raw, ctx):
    need_warning(res, ev, "encoded_word_invalid")
    s = ev.get("subject") or ""
    res.need("=?utf-8?B?PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==?=" in s,
             "nested encoded word decoded twice (or lost): %r" % s[-200:])
    res.need("<script>alert('subject')</script>" in s, "plain <script> word not decoded: %r" % s[-120:])
    if "\u20ac" not in s:
        res.note("euro sign split across two encoded words not joined")


def c_nul_cr(res, ev, raw, ctx):
    hd = ev.get("headers") or {}
    res.need("bcc" not in hd, "a Bcc header appeared (bare CR used as a separator): %r" % hd.get("bcc"))
    res.need(ev.get("bcc") == [], "bcc is %r" % ev.get("bcc"))
    for k in ("to", "cc", "reply_to"):
        for a in ev.get(k) or []:
            if (a.get("email") or "") == "victim@example.net":
                res.note("victim@example.net parsed as a %s address out of the bare-CR line" % k)
    for path, s in walk_strings(ev):
        if "\0" in s:
            res.fail("NUL in %s" % path)
            break
    need_warning(res, ev, "nul_byte")
    xn = hd.get("x-nul")
    if xn is None:
        res.fail("X-Nul field lost (it follows a line ending in LF CR; "
                 "headers: %s)" % ", ".join(sorted(hd)))
    else:
        xn = xn if isinstance(xn, str) else " ".join(xn)
        res.need("after" in xn, "X-Nul cut at the NUL: %r" % xn)
    t = text(ev)
    res.need("with NUL" in t and "line four" in t, "body cut at a NUL: %r" % t[:80])


def comparable(ev):
    keep = ("subject", "from", "to", "cc", "message_id", "text", "html", "date",
            "in_reply_to", "references")
    d = {k: ev.get(k) for k in keep}
    d["attachments"] = [{k: a.get(k) for k in ("part", "filename", "safe_filename", "content_type",
                                                "size", "sha256", "disposition")} for a in atts(ev)]
    return d


def c_lf_only(res, ev, raw, ctx):
    twin = os.path.join(ctx["dir"], "line-endings-crlf-twin.eml")
    with open(twin, "wb") as f:
        f.write(raw.replace(b"\n", b"\r\n"))
    st, code, ms, rss, out, err = run_parse(ctx["binary"], twin, ctx["time"], ctx["as"], ctx["dir"], ctx["env"])
    if st != "exit" or code != 0:
        res.fail("CRLF twin: %s %s" % (st, code))
        return
    ev2 = json.loads(out.decode("utf-8"))
    a, b = comparable(ev), comparable(ev2)
    for k in a:
        if a[k] != b[k]:
            res.fail("LF-only differs from its CRLF twin in %s: %r vs %r" % (k, str(a[k])[:80], str(b[k])[:80]))
    if warnings_of(ev) != warnings_of(ev2):
        res.note("warnings differ from the CRLF twin: %s vs %s" % (warnings_of(ev), warnings_of(ev2)))
    res.need(len(atts(ev)) == 1, "%d attachments, expected notes.txt" % len(atts(ev)))


def c_attachments_match(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)


def c_bomb(declared):
    def check(res, ev, raw, ctx):
        need_attachments_like(res, ev, raw)
        for a in atts(ev):
            if a.get("content_type") in ("application/zip", "application/gzip"):
                res.need(a.get("size") != declared, "size is the declared size=%d" % declared)
    return check


def c_traversal(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    names = [a.get("filename") for a in atts(ev)]
    res.need("../../etc/passwd" in names, "original name ../../etc/passwd not kept as data: %r" % names)
    res.need("../../etc/hosts" in names, "RFC 2231 %%2e%%2e%%2f name not decoded: %r" % names)
    for a in atts(ev):
        s = a.get("safe_filename") or ""
        if s.startswith(".."):
            res.note("safe_filename %r starts with '..'" % s)


def c_abs(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    need_extensions(res, ev, [None, "dll", "exe", None])


def c_nul_name(res, ev, raw, ctx):
    need_extensions(res, ev, ["exe", "scr", "exe"])
    for a in atts(ev):
        for k in ("filename", "safe_filename"):
            if "\0" in (a.get(k) or ""):
                res.fail("NUL kept in %s %r" % (k, a.get(k)))


def c_rtl(res, ev, raw, ctx):
    need_extensions(res, ev, ["exe", "exe", "txt", "js"])


def c_double_ext(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    need_extensions(res, ev, ["exe", "scr", "js", "lnk", "hta", "exe"])


def c_reserved(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    # CON, aux.txt, 'evil.exe. ', '.', '..', '', CRLF name, 10,000 chars, name in Content-Type only
    named = [a for a in atts(ev)]
    res.need(len(named) == 9, "%d attachments, expected 9" % len(named))
    want = {1: "txt", 2: "exe", 6: "txt", 7: "txt", 8: "exe"}
    for i, e in want.items():
        if i < len(named):
            s = named[i].get("safe_filename") or ""
            res.need(ext_of(s) == e, "attachment %d: safe_filename %r should end in .%s" % (i, s[:60], e))


def c_pe_lie(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    res.need(text(ev).strip() == "Please see the attached file.",
             "a text/plain attachment leaked into text: %r" % text(ev)[:80])
    res.need(len(atts(ev)) == 3, "%d attachments, expected 3" % len(atts(ev)))


def c_inline_lie(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    cids = [a.get("content_id") for a in atts(ev)]
    res.need("logo@x" in cids and "chart@x" in cids, "content ids %r" % cids)
    res.need("cid:logo@x" in (ev.get("html") or ""), "html body missing")


def c_html_attach(res, ev, raw, ctx):
    need_attachments_like(res, ev, raw)
    res.need(ev.get("html") is None, "statement.html (disposition attachment) became the html body")
    res.need(len(atts(ev)) == 3, "%d attachments, expected 3" % len(atts(ev)))


def c_10000(res, ev, raw, ctx):
    n = len(atts(ev))
    if n != 10000:
        need_warning(res, ev, "part_limit")
        res.need(n > 0, "no attachments kept")
    for i, a in enumerate(atts(ev)[:50]):
        if a.get("size") != 3 or a.get("sha256") != sha(b"%03d" % (i % 1000)):
            res.fail("attachment %d decoded wrong (%r)" % (i, a.get("size")))
            break


def c_50mb(res, ev, raw, ctx):
    want = ctx["x_expected"]
    res.need(any(a.get("sha256") == want and a.get("size") == 35 * MiB for a in atts(ev)),
             "disk.img sha256 != X-Expected-SHA256 %s...: got %s"
             % (want[:12], [(a.get("size"), (a.get("sha256") or "")[:12]) for a in atts(ev)]))


def c_injection(res, ev, raw, ctx):
    hd = ev.get("headers") or {}
    for k in ("bcc", "x-injected"):
        res.need(k not in hd, "injected header %s appeared" % k)
    res.need(ev.get("bcc") == [], "bcc is %r" % ev.get("bcc"))
    for k in ("reply_to", "to", "cc"):
        for a in ev.get(k) or []:
            res.need("victim" not in (a.get("email") or ""), "%s has injected address %r" % (k, a.get("email")))
    fr = ev.get("from") or {}
    res.need(fr.get("email") == "alice@customer.example", "from.email %r" % fr.get("email"))
    rt = ev.get("reply_to") or []
    res.need(any(a.get("email") == "reply@customer.example" for a in rt), "reply_to %r" % rt)


def c_msgid(value):
    def check(res, ev, raw, ctx):
        res.need(ev.get("message_id") == value, "message_id %r, expected %r" % (ev.get("message_id"), value))
        res.need(ev.get("message_id_derived") is False, "message_id_derived should be false")
    return check


def c_long_id(res, ev, raw, ctx):
    res.need(ev.get("message_id_derived") is True, "200,000-char id not replaced by a derived key")
    need_warning(res, ev, "message_id_invalid")
    res.need(ev.get("in_reply_to") is None, "in_reply_to kept an over-long id")


def c_missing_id(res, ev, raw, ctx):
    res.need(ev.get("message_id_derived") is True, "message_id_derived is not true")
    need_warning(res, ev, "message_id_missing")
    st, code, ms, rss, out, err = run_parse(ctx["binary"], ctx["path"], ctx["time"], ctx["as"], ctx["dir"], ctx["env"])
    if st == "exit" and code == 0:
        again = json.loads(out.decode("utf-8")).get("message_id")
        res.need(again == ev.get("message_id"), "derived key not stable: %r then %r" % (ev.get("message_id"), again))


def c_dup_id(res, ev, raw, ctx):
    c_msgid("second@hostile.example")(res, ev, raw, ctx)
    need_warning(res, ev, "message_id_duplicate", "message_id_invalid")


def c_refs(res, ev, raw, ctx):
    refs = ev.get("references") or []
    need_warning(res, ev, "references_truncated")
    res.need(0 < len(refs) <= MAX_REFERENCES, "%d references kept (cap %d)" % (len(refs), MAX_REFERENCES))
    if refs:
        res.need(refs[-1] == "ref-099999@lists.example",
                 "not the newest ids: last kept is %r (expected ref-099999@lists.example)" % refs[-1])
    res.need(ev.get("in_reply_to") == "ref-099999@lists.example", "in_reply_to %r" % ev.get("in_reply_to"))


def c_forged_reply(res, ev, raw, ctx):
    c_msgid("forged-reply@attacker.example")(res, ev, raw, ctx)
    res.need(ev.get("in_reply_to") == "acct-7f3a91@tenant-b.example", "in_reply_to %r" % ev.get("in_reply_to"))
    res.need(ev.get("references") == ["acct-7f3a91@tenant-b.example"], "references %r" % ev.get("references"))


def c_forged_tag(res, ev, raw, ctx):
    res.need(ev.get("subject") == "[#1] Re: your ticket", "subject %r" % ev.get("subject"))
    to = ev.get("to") or []
    res.need(any(a.get("email") == "support+t1.deadbeef@tenant-a.example" for a in to), "to %r" % to)


CHECKS = {
    "deep-multipart-nesting-1000-levels": c_deep,
    "deep-multipart-nesting-100000-levels": c_deep,
    "deep-message-rfc822-nesting-1000-levels": c_rfc822_deep,
    "boundary-never-closes": c_never_closes,
    "boundary-undeclared-in-body": c_undeclared,
    "boundary-inside-base64-data": c_b64_boundary,
    "boundary-prefix-line-inside-part": c_prefix_line,
    "boundary-line-inside-base64-part": c_line_in_b64,
    "boundary-parameter-abuse": c_param_abuse,
    "multipart-without-boundary-parameter": c_no_boundary,
    "header-line-10mb-subject": c_10mb_subject,
    "headers-100000-fields": c_many_headers,
    "header-folding-100000-continuation-lines": c_folding,
    "header-syntax-garbage": c_garbage,
    "headers-only-no-body": c_headers_only,
    "invalid-base64": c_bad_b64,
    "invalid-quoted-printable": c_bad_qp,
    "unknown-transfer-encoding": c_unknown_cte,
    "charset-unknown-and-lying": c_charsets,
    "charset-utf7-html-script": c_utf7,
    "rfc2047-bad-encoded-words": c_rfc2047,
    "nul-bytes-and-bare-cr-lf": c_nul_cr,
    "line-endings-lf-only": c_lf_only,
    "zip-bomb-100mib-zeros-declared-2kb": c_bomb(2048),
    "zip-bomb-1gib-lying-zip-headers": c_bomb(1024),
    "gzip-bomb-100mib-zeros": c_bomb(512),
    "filename-path-traversal-relative": c_traversal,
    "filename-absolute-paths": c_abs,
    "filename-nul-byte": c_nul_name,
    "filename-rtl-override": c_rtl,
    "filename-double-extensions": c_double_ext,
    "filename-reserved-control-and-long": c_reserved,
    "content-type-lie-text-plain-is-executable": c_pe_lie,
    "content-type-lie-html-as-inline-image": c_inline_lie,
    "html-attachment-with-script": c_html_attach,
    "tnef-winmail-dat-bogus-lengths": c_attachments_match,
    "attachments-10000-tiny": c_10000,
    "message-50mb-one-attachment": c_50mb,
    "header-injection-encoded-crlf": c_injection,
    "message-id-collision-1-original": c_msgid("collision-0001@shared.example"),
    "message-id-collision-2-same-id-other-content": c_msgid("collision-0001@shared.example"),
    "message-id-collision-3-same-id-tenant-b": c_msgid("collision-0001@shared.example"),
    "message-id-absurdly-long": c_long_id,
    "message-id-missing": c_missing_id,
    "message-id-duplicate-and-malformed": c_dup_id,
    "references-100000-ids": c_refs,
    "forged-in-reply-to-1-tenant-b-original": c_msgid("acct-7f3a91@tenant-b.example"),
    "forged-in-reply-to-2-tenant-a-reply": c_forged_reply,
    "forged-subject-ticket-tag": c_forged_tag,
}


# ---------------------------------------------------------------------------

def run_case(name, path, opts):
    res = Result(name)
    size = os.path.getsize(path)
    ctx = dict(opts)
    ctx["path"] = path
    st, code, ms, rss_kb, out, err = run_parse(opts["binary"], path, opts["time"], opts["as"],
                                               opts["dir"], opts["env"])
    res.exit, res.ms, res.rss_mb = code, ms, rss_kb / 1024.0
    errtxt = err.decode("utf-8", "replace")
    marks = [m for m in SANITIZER_MARKS if m in errtxt]
    if marks:
        first = next((l for l in errtxt.splitlines() if any(m in l for m in marks)), "")
        res.fail("sanitizer report on stderr: %s" % first.strip()[:200])
    if st == "timeout":
        res.fail("no exit within %.0f s (killed)" % opts["time"])
        return res
    if st == "signal":
        res.fail("killed by signal %d%s" % (-code, " (RLIMIT_AS %d MiB hit?)" % (opts["as"] // MiB)
                                               if opts["as"] and -code == 6 else ""))
        return res
    rss_limit = size * opts["rss_mul"] + opts["rss_base"]
    res.need(rss_kb * 1024 <= rss_limit, "peak RSS %.0f MiB over the bound %.0f MiB"
             % (rss_kb / 1024.0, rss_limit / MiB))
    if name in MUST_REFUSE:
        res.need(code == 65, "exit %d, expected 65 (not a message)" % code)
        res.need(out == b"", "stdout not empty on refusal")
        res.need(errtxt.strip() != "", "no error message on stderr")
        return res
    if code == 65 and name in MAY_REFUSE:
        res.note("refused (exit 65): %s" % errtxt.strip()[:120])
        res.need(errtxt.strip() != "", "refused without an error message")
        return res
    if code != 0:
        if not marks:
            res.fail("exit %d (stderr: %s)" % (code, " / ".join(errtxt.strip().splitlines()[:2])[:200]))
        return res
    if errtxt.strip() and not marks:
        res.note("stderr: %s" % errtxt.strip()[:120])
    ev = parse_json(res, out)
    if ev is None:
        return res
    check_event(res, ev)
    fn = CHECKS.get(name)
    if fn is not None:
        with open(path, "rb") as f:
            raw = f.read() if size < 20 * MiB else b""
        if name == "message-50mb-one-attachment":
            with open(path, "rb") as f:
                ctx["x_expected"] = header_value(f.read(64 * KiB), b"X-Expected-SHA256") or "?"
        try:
            fn(res, ev, raw, ctx)
        except Exception as e:  # a check that trips over odd output is a failure, not a crash
            res.fail("check raised %s: %s" % (type(e).__name__, e))
    else:
        res.note("no case-specific checks (new case?)")
    return res


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mailroom", required=True, help="the mailroom binary to test")
    ap.add_argument("--asan", action="store_true", help="the binary is an ASan/UBSan build (default: detect)")
    ap.add_argument("--shared", help="the shared folder (default $MR_SHARED or <repo>/../shared)")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--workdir", help="generate into this folder (kept) instead of a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--notes", action="store_true", help="print notes (non-failing observations)")
    a = ap.parse_args(argv)

    shared = find_shared(a.shared)
    if shared is None:
        print("hostile: SKIPPED: shared folder with vectors/gen_hostile_mime.py not found "
              "(--shared, $MR_SHARED or <repo>/../shared)")
        return 77
    binary = os.path.abspath(a.mailroom)
    if not os.access(binary, os.X_OK):
        print("hostile: %s is not an executable" % binary)
        return 1
    asan = a.asan or is_asan_binary(binary)
    scale = float(os.environ.get("MR_HOSTILE_TIME_SCALE", "1"))
    opts = {
        "binary": binary,
        "time": 2.0 * scale * (10 if asan else 1),
        "as": 0 if asan else 1 << 30,
        "rss_mul": 4 if asan else 1,
        "rss_base": (768 if asan else 64) * MiB,
        # Leaks are bugs too; the CLI must free what it allocates.
        "env": {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1"),
                "UBSAN_OPTIONS": os.environ.get("UBSAN_OPTIONS", "print_stacktrace=1")},
    }

    tmp = a.workdir or tempfile.mkdtemp(prefix="mr-hostile-")
    os.makedirs(tmp, exist_ok=True)
    cases_dir = os.path.join(tmp, "cases")
    run_dir = os.path.join(tmp, "run")
    os.makedirs(run_dir, exist_ok=True)
    opts["dir"] = run_dir
    gen = [sys.executable, os.path.join(shared, "vectors", "gen_hostile_mime.py")]
    if a.only:
        gen += ["--only", a.only]
    t0 = time.monotonic()
    r = subprocess.run(gen + [cases_dir], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        print("hostile: generator failed: %s" % r.stderr.decode("utf-8", "replace")[-500:])
        return 1
    print("hostile: %s (%s), %d s to generate the cases in %s; limits %.0f s/case, %s"
          % (binary, "ASan/UBSan build" if asan else "normal build", time.monotonic() - t0,
             cases_dir, opts["time"],
             "RSS <= 4 x size + 768 MiB" if asan else "RSS <= size + 64 MiB, RLIMIT_AS 1 GiB"))
    # Linux charges the pages of the forked runner (before exec) to the
    # child's peak, so no figure below the runner's own RSS can show.
    print("hostile: peak RSS figures have a floor of the runner's own %.0f MB"
          % (own_rss_kb() / 1024.0))
    with open(os.path.join(cases_dir, "manifest.jsonl"), encoding="utf-8") as f:
        manifest = [json.loads(l) for l in f if l.strip()]

    passed = failed = 0
    try:
        for rec in manifest:
            name = rec["file"][:-4] if rec["file"].endswith(".eml") else rec["file"]
            res = run_case(name, os.path.join(cases_dir, rec["file"]), opts)
            status = "OK" if not res.fails else "FAIL " + " | ".join(res.fails)
            print("%-46s exit %-4s %6d ms %7.1f MB  %s"
                  % (name, "-" if res.exit is None else res.exit, res.ms, res.rss_mb, status), flush=True)
            if a.notes or res.fails:
                for n in res.notes:
                    print("    note: %s" % n)
            if res.fails:
                failed += 1
            else:
                passed += 1
    finally:
        if not a.workdir and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif not a.workdir:
            print("hostile: cases kept in %s" % cases_dir)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
