# SPDX-License-Identifier: Apache-2.0
"""Antivirus scanning with a REAL clamd (docs/attachments.md, scanning).

Each test starts its own clamd in the foreground with its own clamd.conf
in a temporary folder: a unix socket there, and a signature database we
write ourselves (an MD5 .hdb signature of the EICAR test string), so no
downloaded database is needed and freshclam never runs. mailroom gets mail
over SMTP with an EICAR attachment, a clean one and one over clamd's
StreamMaxLength: the first becomes infected and blocked for every token,
the second clean and downloadable, the third an error, and each verdict
is an attachment.scanned event. With clamd stopped an attachment stays
pending (and, with on_error: block, is refused to agents); once clamd
runs again it is scanned.

Without clamd installed the tests skip in a user's clone; with CI=true
they fail instead (scripts/deps.sh --test installs clamav-daemon).

Rescans (an operator asks clamd again): a file clean under yesterday's
database is infected once clamd restarts with a signature for it, and is
blocked with an event that says rescan and previous=clean, while a copy
of the same bytes scanned seconds before is not taken as its verdict; a
file clamd could not scan (over StreamMaxLength) is clean once the limit
is raised and the command line queues the errors again.

The health route's caching needs no real clamd: a fake one counts the
PINGs that a flood of anonymous health requests causes.
"""
import email.message
import email.policy
import hashlib
import json
import os
import random
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import Server

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
         b"$H+H*")
SIGNATURE = "Mailroom.Test.EICAR.UNOFFICIAL"  # clamd adds .UNOFFICIAL


def clamd_binary():
    path = shutil.which("clamd") or (
        "/usr/sbin/clamd" if os.path.exists("/usr/sbin/clamd") else None)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("clamd is not installed (scripts/deps.sh --test installs "
                    "clamav-daemon); CI must run the antivirus tests")
    pytest.skip("clamd is not installed: apt-get install clamav-daemon to "
                "run the antivirus tests")


class Clamd:
    """A clamd of our own: its conf, socket and database in one folder."""

    def __init__(self, tmp, stream_max="1M"):
        self.bin = clamd_binary()
        self.dir = os.path.join(tmp, "clamd")
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        self.socket = os.path.join(self.dir, "clamd.sock")
        self.log = os.path.join(self.dir, "clamd.log")
        self.add_signature("mailroom-test.hdb", "Mailroom.Test.EICAR", EICAR)
        self.conf = os.path.join(self.dir, "clamd.conf")
        self.write_conf(stream_max)
        self.proc = None

    def add_signature(self, file, name, data):
        """An MD5 signature for data (read at the next start)."""
        with open(os.path.join(self.dir, "db", file), "w") as f:
            f.write("%s:%d:%s\n" % (hashlib.md5(data).hexdigest(), len(data),
                                    name))

    def write_conf(self, stream_max):
        """clamd.conf (read at the next start)."""
        with open(self.conf, "w") as f:
            f.write("LocalSocket %s\n" % self.socket)
            f.write("DatabaseDirectory %s\n" % os.path.join(self.dir, "db"))
            f.write("TemporaryDirectory %s\n" % self.dir)
            f.write("PidFile %s\n" % os.path.join(self.dir, "clamd.pid"))
            # Foreground: the test owns the process (no fork, no systemd).
            # Run as whoever runs the test, root in CI: no User line.
            f.write("Foreground yes\n")
            f.write("StreamMaxLength %s\n" % stream_max)
            f.write("MaxThreads 4\n")

    def start(self, timeout=90.0):
        self.out = open(self.log, "ab")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf],
                                     stdout=self.out, stderr=self.out)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                break
            if self.ping():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("clamd did not answer PING:\n" +
                           open(self.log, errors="replace").read())

    def ping(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"zPING\0")
                return s.recv(16) == b"PONG\0"
        except OSError:
            return False

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.out.close()
        if os.path.exists(self.socket):
            os.unlink(self.socket)


def av_server(tmp, clamd, on_error="keep"):
    s = Server(tmp, size="4MB")
    with open(s.config, "a") as f:
        f.write("clamd:\n  socket: %s\n  timeout: 5s\n  retry_max: 500ms\n"
                "  on_error: %s\n" % (clamd.socket, on_error))
    return s


def mail(parts):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Alice <alice@customer.test>"
    m["To"] = "support@acme.test"
    m["Subject"] = "files %s" % os.urandom(4).hex()
    m["Message-ID"] = "<%s@customer.test>" % os.urandom(8).hex()
    m.set_content("See attached.\n")
    for name, data in parts:
        m.add_attachment(data, maintype="application", subtype="octet-stream",
                         filename=name)
    return m.as_bytes()


def smtp_send(srv, raw):
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=30) as c:
        c.sendmail("alice@customer.test", ["support@acme.test"], raw)


def attachments(srv, tok):
    """-> {filename: attachment JSON} over the tenant's tickets."""
    out = {}
    for tk in srv.wait_stored(tok, 1):
        st, t = srv.json_call("GET", "/api/v1/tickets/%d" % tk["id"], tok)
        assert st == 200, t
        out.update({a["filename"]: a for m in t["messages"]
                    for a in m["attachments"]})
    return out


def wait_scanned(srv, tok, names, timeout=60.0):
    end = time.time() + timeout
    atts = {}
    while time.time() < end:
        atts = attachments(srv, tok)
        if all(atts.get(n, {}).get("scan") not in (None, "pending")
               for n in names):
            return atts
        time.sleep(0.2)
    raise AssertionError("not scanned in time: %r\n%s" %
                         (atts, open(srv.log).read()))


def scanned_events(srv, tok):
    st, page = srv.json_call(
        "GET", "/api/v1/events?after=0&limit=100&types=attachment.scanned",
        tok)
    assert st == 200, page
    return [e["payload"] for e in page["events"]]


@pytest.fixture
def clamd(tmpdir_path):
    c = Clamd(tmpdir_path)
    yield c
    c.stop()


def test_eicar_is_infected_and_quarantined_clean_is_served(tmpdir_path,
                                                            clamd):
    clamd.start()
    srv = av_server(tmpdir_path, clamd).start()
    try:
        admin = srv.token(role="admin")
        agent = srv.token(role="agent")
        clean = b"Quarterly numbers, nothing to see here.\n" * 50
        # Over StreamMaxLength 1M; a fixed prefix so no sniffer takes it
        # for an executable (random bytes can look like a DOS .COM file).
        big = b"mailroom test data\n" + random.Random(3).randbytes(1536 * 1024)
        smtp_send(srv, mail([("eicar.txt", EICAR), ("notes.txt", clean),
                             ("big.bin", big)]))
        atts = wait_scanned(srv, admin, ["eicar.txt", "notes.txt", "big.bin"])

        bad = atts["eicar.txt"]
        assert bad["scan"] == "infected"
        assert bad["scan_signature"] == SIGNATURE
        assert bad["blocked"] is True
        assert bad["blocked_reason"] == "infected: " + SIGNATURE
        for tok in (agent, admin):  # quarantine: served to no one
            st, _, body = srv.http_call("GET", bad["url"], None, tok)
            assert st == 403, body
            assert b"infected: " + SIGNATURE.encode() in body

        good = atts["notes.txt"]
        assert good["scan"] == "clean" and good["blocked"] is False
        assert good["scan_signature"] is None
        st, _, body = srv.http_call("GET", good["url"], None, agent)
        assert st == 200 and body == clean

        # StreamMaxLength exceeded is an error, never clean; on_error: keep
        # serves it.
        assert atts["big.bin"]["scan"] == "error"
        st, _, body = srv.http_call("GET", atts["big.bin"]["url"], None,
                                    agent)
        assert st == 200 and body == big

        evs = {e["filename"]: e for e in scanned_events(srv, agent)}
        assert set(evs) == {"eicar.txt", "notes.txt", "big.bin"}
        e = evs["eicar.txt"]
        assert e["scan"] == "infected" and e["signature"] == SIGNATURE
        assert e["attachment_id"] == bad["id"]
        assert e["sha256"] == hashlib.sha256(EICAR).hexdigest()
        assert e["ticket_id"] == srv.all_tickets(agent)[0]["id"]
        assert len(srv.all_tickets(agent)) == 1
        assert e["message_id"].endswith("@customer.test")
        assert evs["notes.txt"]["scan"] == "clean"
        assert evs["notes.txt"]["signature"] is None
        assert evs["big.bin"]["scan"] == "error"
        assert "size limit" in evs["big.bin"]["error"]

        st, h = srv.json_call("GET", "/api/v1/health")
        assert st == 200, h
        assert h["status"] == "ok"
        assert h["checks"]["clamd"]["status"] == "ok"
        assert h["checks"]["clamd"]["scanned"] == 3
        assert h["checks"]["clamd"]["infected"] == 1
        assert h["checks"]["clamd"]["pending"] == 0

        # The same EICAR again: the verdict for those bytes is reused.
        smtp_send(srv, mail([("again.txt", EICAR)]))
        end = time.time() + 30
        while time.time() < end and len(scanned_events(srv, agent)) < 4:
            time.sleep(0.2)
        last = scanned_events(srv, agent)[-1]
        assert last["filename"] == "again.txt"
        assert last["scan"] == "infected" and last["signature"] == SIGNATURE
    finally:
        rc = srv.stop()
    assert rc == 0, open(srv.log).read()


def test_clamd_stopped_keeps_pending_then_scans(tmpdir_path, clamd):
    clamd.start()
    srv = av_server(tmpdir_path, clamd, on_error="block").start()
    try:
        admin = srv.token(role="admin")
        agent = srv.token(role="agent")
        smtp_send(srv, mail([("before.txt", b"scanned while clamd runs\n")]))
        atts = wait_scanned(srv, admin, ["before.txt"])
        assert atts["before.txt"]["scan"] == "clean"

        clamd.stop()
        data = b"a harmless file\n" * 20
        smtp_send(srv, mail([("report.txt", data)]))
        end = time.time() + 20
        while time.time() < end and "report.txt" not in atts:
            atts = attachments(srv, admin)
            time.sleep(0.1)
        time.sleep(2.5)  # several scanner rounds with clamd down
        atts = attachments(srv, admin)
        a = atts["report.txt"]
        assert a["scan"] == "pending"
        # on_error: block: not scanned yet is refused to agents...
        st, _, body = srv.http_call("GET", a["url"], None, agent)
        assert st == 403 and b"scan pending" in body, body
        # ...but an admin may fetch it.
        st, _, body = srv.http_call("GET", a["url"], None, admin)
        assert st == 200 and body == data
        assert [e["filename"] for e in scanned_events(srv, agent)] == [
            "before.txt"]
        st, h = srv.json_call("GET", "/api/v1/health")
        assert st == 200, h
        assert h["status"] == "degraded"
        assert h["checks"]["clamd"]["status"] == "down"
        assert h["checks"]["clamd"]["pending"] == 1
        assert h["checks"]["clamd"]["errors"] >= 1

        clamd.start()
        atts = wait_scanned(srv, admin, ["report.txt"], timeout=60)
        assert atts["report.txt"]["scan"] == "clean"
        st, _, body = srv.http_call("GET", a["url"], None, agent)
        assert st == 200 and body == data
        evs = scanned_events(srv, agent)
        assert [(e["filename"], e["scan"]) for e in evs] == [
            ("before.txt", "clean"), ("report.txt", "clean")]
        st, h = srv.json_call("GET", "/api/v1/health")
        assert h["status"] == "ok" and h["checks"]["clamd"]["pending"] == 0
    finally:
        rc = srv.stop()
    assert rc == 0, open(srv.log).read()


def rescan(srv, att_id, tok):
    return srv.json_call("POST", "/api/v1/attachments/%d/rescan" % att_id,
                         tok)


def bulk_rescan(srv, tok, **filters):
    return srv.json_call("POST", "/api/v1/attachments/rescan", tok,
                         json.dumps(filters).encode(),
                         {"Content-Type": "application/json"})


def test_rescan_after_a_signature_update_blocks_yesterdays_clean_file(
        tmpdir_path, clamd):
    # Bytes the first database knows nothing about; a fixed text prefix so
    # no sniffer takes them for an executable.
    payload = b"mailroom rescan test, malware from tomorrow\n" * 30
    clamd.start()
    srv = av_server(tmpdir_path, clamd, on_error="block").start()
    try:
        admin = srv.token(role="admin")
        agent = srv.token(role="agent")
        other = srv.token(tenant="globex", role="admin")
        smtp_send(srv, mail([("report.txt", payload), ("copy.txt", payload)]))
        atts = wait_scanned(srv, admin, ["report.txt", "copy.txt"])
        rep, cop = atts["report.txt"], atts["copy.txt"]
        assert rep["scan"] == "clean" and cop["scan"] == "clean"
        assert rep["scan_previous"] is None

        # The signature update: clamd restarts with a database that has it.
        clamd.stop()
        clamd.add_signature("mailroom-new.hdb", "Mailroom.Test.Tomorrow",
                            payload)

        st, doc = rescan(srv, rep["id"], agent)
        assert st == 403, doc  # admins only
        st, doc = rescan(srv, rep["id"], other)
        assert st == 404, doc  # another tenant's is no one's
        st, doc = rescan(srv, 999999, admin)
        assert st == 404, doc
        st, doc = rescan(srv, rep["id"], admin)
        assert st == 202, doc
        assert doc["id"] == rep["id"]
        assert doc["scan"] == "pending" and doc["scan_previous"] == "clean"
        assert doc["blocked"] is False
        # While it waits (clamd is down), a clean file stays with the
        # agents even under on_error: block.
        time.sleep(1.0)
        a = attachments(srv, admin)["report.txt"]
        assert a["scan"] == "pending", a
        st, _, body = srv.http_call("GET", rep["url"], None, agent)
        assert st == 200 and body == payload

        clamd.start()
        atts = wait_scanned(srv, admin, ["report.txt"])
        bad = atts["report.txt"]
        sig = "Mailroom.Test.Tomorrow.UNOFFICIAL"
        # Asked clamd again: the clean verdict of copy.txt (the same bytes,
        # seconds old) was not reused.
        assert bad["scan"] == "infected", bad
        assert bad["scan_signature"] == sig
        assert bad["blocked"] is True
        assert bad["blocked_reason"] == "infected: " + sig
        assert bad["scan_previous"] is None
        for tok in (agent, admin):
            st, _, body = srv.http_call("GET", bad["url"], None, tok)
            assert st == 403, body
        # Not rescanned: still what it was.
        assert atts["copy.txt"]["scan"] == "clean"
        evs = scanned_events(srv, agent)
        assert len(evs) == 3, evs
        e = evs[-1]
        assert e["attachment_id"] == rep["id"]
        assert e["scan"] == "infected" and e["signature"] == sig
        assert e["rescan"] is True and e["previous"] == "clean"
        assert evs[0]["rescan"] is False and evs[0]["previous"] is None

        # The rest of the window, in bulk: a dry run counts, the API queues.
        r = srv.cli("attachments", "rescan", "--tenant", "acme", "--state",
                    "clean", "--since", "1h", "--dry-run")
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().startswith("1 attachment(s) would be"), \
            r.stdout
        st, doc = bulk_rescan(srv, admin, state="clean", since="1h",
                              dry_run=True)
        assert st == 200 and doc["queued"] == 1 and doc["dry_run"] is True
        st, doc = bulk_rescan(srv, admin, state="clean", since="1h",
                              limt=5)
        assert st == 400, doc  # a misspelt filter widens nothing
        st, doc = bulk_rescan(srv, admin, state="dirty")
        assert st == 400, doc
        st, doc = bulk_rescan(srv, other, state="clean")
        assert st == 202 and doc["queued"] == 0, doc
        st, doc = bulk_rescan(srv, admin, state="clean", since="1h")
        assert st == 202, doc
        assert doc["queued"] == 1 and doc["state"] == "clean"
        assert doc["received_after"].endswith("Z")
        atts = wait_scanned(srv, admin, ["copy.txt"])
        assert atts["copy.txt"]["scan"] == "infected"
        e = scanned_events(srv, agent)[-1]
        assert e["filename"] == "copy.txt"
        assert e["rescan"] is True and e["previous"] == "clean"
        st, h = srv.json_call("GET", "/api/v1/health")
        assert h["checks"]["clamd"]["pending"] == 0, h
    finally:
        rc = srv.stop()
    assert rc == 0, open(srv.log).read()


def test_rescan_of_an_error_after_raising_stream_max_length(tmpdir_path,
                                                             clamd):
    clamd.start()
    srv = av_server(tmpdir_path, clamd).start()
    try:
        admin = srv.token(role="admin")
        agent = srv.token(role="agent")
        big = b"mailroom test data\n" + random.Random(5).randbytes(
            1536 * 1024)
        smtp_send(srv, mail([("big.bin", big)]))
        atts = wait_scanned(srv, admin, ["big.bin"])
        assert atts["big.bin"]["scan"] == "error"

        # Queued again while clamd still has the old limit: error again,
        # and an error verdict is an event like any other.
        r = srv.cli("attachments", "rescan", "--state", "error")
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().startswith("1 attachment(s) queued"), r.stdout
        end = time.time() + 30
        while time.time() < end and len(scanned_events(srv, agent)) < 2:
            time.sleep(0.2)
        evs = scanned_events(srv, agent)
        assert [(e["scan"], e["rescan"], e["previous"]) for e in evs] == [
            ("error", False, None), ("error", True, "error")]

        clamd.stop()
        clamd.write_conf("4M")
        clamd.start()
        r = srv.cli("attachments", "rescan", "--state", "error",
                    "--received-after", "2000-01-01T00:00:00Z")
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().startswith("1 attachment(s) queued"), r.stdout
        atts = wait_scanned(srv, admin, ["big.bin"])
        assert atts["big.bin"]["scan"] == "clean", atts
        assert atts["big.bin"]["blocked"] is False
        e = scanned_events(srv, agent)[-1]
        assert e["scan"] == "clean" and e["error"] is None
        assert e["rescan"] is True and e["previous"] == "error"
        st, _, body = srv.http_call("GET", atts["big.bin"]["url"], None,
                                    agent)
        assert st == 200 and body == big

        # Nothing left in error; bad words are a usage error.
        r = srv.cli("attachments", "rescan", "--state", "error")
        assert r.returncode == 0 and r.stdout.startswith(b"0 "), r.stdout
        r = srv.cli("attachments", "rescan", "--since", "yesterday")
        assert r.returncode == 64, r.stderr
        r = srv.cli("attachments", "rescan", "--since", "1h",
                    "--received-after", "2000-01-01T00:00:00Z")
        assert r.returncode == 64, r.stderr
    finally:
        rc = srv.stop()
    assert rc == 0, open(srv.log).read()


def test_without_clamd_config_scan_stays_null(tmpdir_path):
    srv = Server(tmpdir_path).start()
    try:
        admin = srv.token(role="admin")
        smtp_send(srv, mail([("eicar.txt", EICAR)]))
        atts = attachments(srv, admin)
        assert atts["eicar.txt"]["scan"] is None
        st, _, body = srv.http_call("GET", atts["eicar.txt"]["url"], None,
                                    admin)
        assert st == 200 and body == EICAR
        st, h = srv.json_call("GET", "/api/v1/health")
        assert st == 200 and h["checks"]["clamd"] is None
        # A rescan with nothing to scan it is refused, not left pending.
        st, doc = rescan(srv, atts["eicar.txt"]["id"], admin)
        assert st == 409 and "clamd" in doc["detail"], doc
        st, doc = bulk_rescan(srv, admin, state="all")
        assert st == 409, doc
        r = srv.cli("attachments", "rescan", "--state", "all")
        assert r.returncode == 78, r.stderr
        assert attachments(srv, admin)["eicar.txt"]["scan"] is None
    finally:
        srv.stop()


class FakeClamd:
    """A clamd that only answers PING (after `delay` seconds, or never
    while `silent`) and counts the PINGs it was sent."""

    def __init__(self, path, delay=0.3):
        self.path = path
        self.delay = delay
        self.silent = False
        self.pings = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        with c:
            cmd = b""
            while not cmd.endswith(b"\0") and len(cmd) < 64:
                b = c.recv(64)
                if not b:
                    return
                cmd += b
            if cmd != b"zPING\0":
                return
            with self.lock:
                self.pings += 1
            if self.silent:
                while c.recv(64):  # until mailroom gives up and closes
                    pass
                return
            time.sleep(self.delay)
            c.sendall(b"PONG\0")

    def close(self):
        self.sock.close()


def health_burst(srv, n=50):
    """n GET /api/v1/health at once -> [(status, doc, seconds)]."""
    out = [None] * n
    go = threading.Barrier(n)

    def one(i):
        go.wait()
        t0 = time.monotonic()
        st, doc = srv.json_call("GET", "/api/v1/health")
        out[i] = (st, doc, time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_health_requests_share_one_clamd_ping(tmpdir_path):
    """50 anonymous health requests at once make one PING, not 50; a silent
    clamd holds none of them past the PING's 2 s cap; the reading is
    reused for 5 s and the answer says how old it is."""
    fake = FakeClamd(os.path.join(tmpdir_path, "fake-clamd.sock"))
    s = Server(tmpdir_path)
    with open(s.config, "a") as f:
        f.write("clamd:\n  socket: %s\n" % fake.path)
    srv = s.start()
    try:
        answers = health_burst(srv)
        assert fake.pings <= 2, fake.pings
        for st, doc, _ in answers:
            assert st == 200, doc
            assert doc["status"] == "ok", doc
            assert doc["checks"]["clamd"]["status"] == "ok", doc
            assert 0 <= doc["age_ms"] < 5000, doc
            assert doc["checked_at"].endswith("Z"), doc
        # Within the 5 s the reading is reused, and has aged.
        time.sleep(0.5)
        pings = fake.pings
        st, doc = srv.json_call("GET", "/api/v1/health")
        assert st == 200 and fake.pings == pings, (fake.pings, pings)
        assert doc["checks"]["clamd"]["age_ms"] >= 400, doc

        # clamd goes silent: once the reading is stale, one PING again,
        # given up after 2 s, shared by the whole burst.
        fake.silent = True
        time.sleep(5.2)
        pings = fake.pings
        answers = health_burst(srv)
        assert fake.pings - pings <= 2, (fake.pings, pings)
        for st, doc, took in answers:
            assert st == 200, doc
            assert doc["status"] == "degraded", doc
            assert doc["checks"]["clamd"]["status"] == "down", doc
            assert took < 4.5, took
    finally:
        rc = srv.stop()
        fake.close()
    assert rc == 0, open(srv.log).read()
