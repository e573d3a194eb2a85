# SPDX-License-Identifier: Apache-2.0
"""Outbound webhook delivery under trouble (issue 7): many requests in
flight at once, receivers that are down, answer 500, hang to the timeout or
answer 410, and mailroom killed (SIGKILL) while it delivers. Afterwards
every event arrived (or is dead with its reason), none lost, every
redelivery carried the same webhook-id and both signatures verified.
docs/webhooks.md, "Delivery"."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import sqlite3
import threading
import time

from conftest import Server, free_port, load_test, message

CT = {"Content-Type": "message/rfc822"}
SECRET = "whsec_" + base64.b64encode(b"d" * 24).decode()
OLD = "previous-secret-0123456789"


class Receiver:
    """A loopback receiver; `behave(n, headers, body)` (n: 0-based count of
    requests so far) returns a status, or ("hang", seconds): wait that long
    and then answer 200 to whoever is still there. Every request is kept
    in hits with its arrival time. port: listen there (None: any); start
    False: the port stays closed (connection refused) until open()."""

    def __init__(self, behave=None, port=None, start=True):
        self.behave = behave or (lambda n, h, b: 200)
        self.hits = []
        self.lock = threading.Lock()
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.srv = None
        if start:
            self.open()

    def open(self):
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with rcv.lock:
                    k = len(rcv.hits)
                    rcv.hits.append((time.time(), hdrs, body))
                what = rcv.behave(k, hdrs, body)
                if isinstance(what, tuple):
                    time.sleep(what[1])
                    what = 200
                try:
                    self.send_response(what)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # mailroom gave up (its timeout) or was killed

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                   H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def snapshot(self):
        with self.lock:
            return list(self.hits)


def std_sig(secret, msg_id, ts, body):
    key = (base64.b64decode(secret[6:]) if secret.startswith("whsec_")
           else secret.encode())
    mac = hmac.new(key, b"%s.%s.%s" % (msg_id.encode(), ts.encode(), body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def check_signed(hdrs, body):
    """Both signatures verify, and webhook-id is evt_<seq> of the body."""
    mid, ts = hdrs["webhook-id"], hdrs["webhook-timestamp"]
    assert hdrs["webhook-signature"].split(" ") == [
        std_sig(SECRET, mid, ts, body), std_sig(OLD, mid, ts, body)]
    want = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hdrs["x-email-signature"], want)
    obj = json.loads(body)
    assert mid == "evt_%d" % obj["seq"] == obj["id"]
    return obj


def configure(tmp, subs, top="", data=None):
    """A Server whose tenant acme subscribes (url, events or None)."""
    s = Server(tmp, data=data)
    text = open(s.config).read()
    block = "    webhooks:\n"
    for url, events in subs:
        block += '      - url: %s\n        secrets: ["%s", "%s"]\n' % (
            url, SECRET, OLD)
        if events:
            block += "        events: [%s]\n" % ", ".join(events)
    text = text.replace("  - name: acme\n", "  - name: acme\n" + block, 1)
    text = "webhooks_allow_private: true\n" + top + text
    open(s.config, "w").write(text)
    return s


def send(server, token, n, tag):
    """n messages, each on a ticket of its own."""
    for i in range(n):
        st, _, body = server.http_call(
            "POST", "/api/v1/messages",
            message(subject="%s %d" % (tag, i),
                    frm="%s%d <%s%d@customer.test>" % (tag, i, tag, i)),
            token, CT)
        assert st == 202, body


def events(server, reader, types=None):
    """Every event of tenant acme -> {id: event}."""
    out, after = {}, 0
    for _ in range(1000):
        st, page = server.json_call(
            "GET", "/api/v1/events?after=%d&limit=100" % after, reader)
        assert st == 200, page
        for e in page["events"]:
            if types is None or e["type"] in types:
                out[e["id"]] = e
        if not page["events"]:
            return out
        after = page["events"][-1]["seq"]
    return out


def wait(pred, timeout=30.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def delivered(rcv, want_status=lambda h: True):
    """webhook-id -> [event objects], each checked for its signatures."""
    got = {}
    for _, hdrs, body in rcv.snapshot():
        obj = check_signed(hdrs, body)
        got.setdefault(hdrs["webhook-id"], []).append(obj)
    return got


def settle(server, reader, rcvs, types=None, timeout=40.0):
    """Waits until the events stop changing and every receiver in rcvs has
    seen each of them -> the events."""
    evs = {}

    def done():
        nonlocal evs
        evs = events(server, reader, types)
        return evs and all(set(evs) <= set(delivered(r)) for r in rcvs)
    assert wait(done, timeout, 0.2), (
        sorted(evs), [sorted(delivered(r)) for r in rcvs])
    return evs


def db_rows(server, url):
    db = sqlite3.connect(os.path.join(server.data, "mailroom.db"), timeout=30)
    try:
        return db.execute(
            "SELECT d.seq, d.state, d.attempts, d.last_error"
            " FROM webhook_deliveries d JOIN webhook_subs s"
            " ON s.id = d.webhook_id WHERE s.url = ? ORDER BY d.seq",
            (url,)).fetchall()
    finally:
        db.close()


def test_a_hanging_receiver_delays_no_other(tmpdir_path):
    """One receiver hangs to the timeout on every request; the other's
    events arrive at once, while the hanging ones are still in flight."""
    slow = Receiver(lambda n, h, b: ("hang", 5.0))
    fast = Receiver()
    s = configure(tmpdir_path, [(slow.url, None), (fast.url, None)],
                  top="webhook_timeout: 3s\nwebhook_retry_scale: 0.001\n"
                      "webhook_concurrency: 8\n").start()
    try:
        ingest, reader = s.token(role="ingest"), s.token(role="read")
        for i in range(3):
            before = len(events(s, reader))
            t0 = time.time()
            send(s, ingest, 1, "fast%d" % i)

            def arrived():
                # a message's events commit together, in one transaction
                evs = events(s, reader)
                return len(evs) > before and set(evs) <= set(delivered(fast))
            assert wait(arrived, 10.0, 0.01)
            took = time.time() - t0
            # Sent one at a time, the fast receiver would wait for the
            # slow one's 3 s timeout.
            assert took < 1.5, "fast receiver waited %.2fs" % took
        # the slow receiver got requests too, and they were in flight
        assert slow.snapshot(), "the slow subscription was never tried"
        first_slow = slow.snapshot()[0][0]
        last_fast = fast.snapshot()[-1][0]
        assert last_fast - first_slow < 3.0
    finally:
        assert s.stop() in (0, None)
        slow.close()
        fast.close()


def test_one_delivery_per_ticket_in_flight(tmpdir_path):
    """Many deliveries in flight at once, some answered 500 the first
    time: a ticket's next event is never sent while one of its events is
    still at the receiver, and a ticket's events arrive in seq order, a
    retried one again before any later one."""
    lock = threading.Lock()
    busy, seen, bad = set(), set(), []

    def behave(n, hdrs, body):
        obj = json.loads(body)
        t, seq = obj["ticket_id"], obj["seq"]
        with lock:
            if t in busy:
                bad.append(("two in flight", t, seq))
            busy.add(t)
            first = seq not in seen
            seen.add(seq)
        time.sleep(0.002 * (seq % 7))
        with lock:
            busy.discard(t)
        return 500 if first and seq % 3 == 0 else 200

    rcv = Receiver(behave)
    s = configure(tmpdir_path, [(rcv.url, None)],
                  top="webhook_retry_scale: 0.001\n").start()
    try:
        ingest, reader = s.token(role="ingest"), s.token(role="read")
        send(s, ingest, 12, "order")
        evs = settle(s, reader, [rcv])
        retried = [e for e in evs.values() if e["seq"] % 3 == 0]
        assert retried
        assert wait(lambda: len(rcv.snapshot()) >= len(evs) + len(retried))
        assert not bad, bad
        by_ticket = {}
        for _, hdrs, body in rcv.snapshot():
            obj = check_signed(hdrs, body)
            by_ticket.setdefault(obj["ticket_id"], []).append(obj["seq"])
        assert len(by_ticket) == 12
        for t, seqs in by_ticket.items():
            assert seqs == sorted(seqs), (t, seqs)
        assert len(rcv.snapshot()) == len(evs) + len(retried)
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def test_outages_then_every_event_arrives(tmpdir_path):
    """Down (connection refused) for a while, 500s, hangs past the
    timeout, 410: afterwards every event arrived at the first three, each
    redelivery with the same webhook-id; the 410 one is disabled: no
    request starts after its first 410."""
    down = Receiver(start=False)
    errors = Receiver(lambda n, h, b: 500 if n < 4 else 200)
    hangs = Receiver(lambda n, h, b: ("hang", 2.5) if n < 3 else 200)
    gone = Receiver(lambda n, h, b: 410)
    s = configure(tmpdir_path, [(down.url, None), (errors.url, None),
                                (hangs.url, None),
                                (gone.url, ["ticket.created"])],
                  top="webhook_timeout: 1s\nwebhook_retry_scale: 0.001\n"
                  ).start()
    try:
        ingest, reader = s.token(role="ingest"), s.token(role="read")
        send(s, ingest, 3, "outage")
        time.sleep(1.5)  # retries against the closed port meanwhile
        down.open()
        t_later = time.time()
        send(s, ingest, 2, "later")
        evs = settle(s, reader, [down, errors, hangs])
        for r in (down, errors, hangs):
            got = delivered(r)
            assert set(got) == set(evs), r.url
            for mid, objs in got.items():
                # the same event, byte for byte the same object
                assert all(o == evs[mid] for o in objs), mid
        # redelivered: 500s and hangs made extra attempts of the same ids
        assert len(errors.snapshot()) >= len(evs) + 1
        assert len(hangs.snapshot()) >= len(evs) + 1
        # Requests already in flight when the first 410 came back may get
        # theirs too; none starts after it (nothing of the later batch).
        assert 1 <= len(gone.snapshot()) <= 3
        assert all(t < t_later for t, _, _ in gone.snapshot())
        rows = db_rows(s, gone.url)
        assert rows and "410" in rows[0][3], rows
        assert all(r[1] != "delivered" for r in rows), rows
        # nothing left pending for the healthy ones
        for r in (down, errors, hangs):
            assert wait(lambda: all(x[1] == "delivered"
                                    for x in db_rows(s, r.url)), 10), \
                db_rows(s, r.url)
        refused = [x for x in db_rows(s, down.url) if x[2] > 1]
        assert refused, "the closed port was never retried"
    finally:
        assert s.stop() in (0, None)
        for r in (down, errors, hangs, gone):
            r.close()


def test_dead_letter_keeps_its_reason(tmpdir_path):
    """A receiver that always answers 500: after the last attempt each
    delivery is dead with the answer as its reason, and every attempt
    carried the same webhook-id."""
    bad = Receiver(lambda n, h, b: 500)
    s = configure(tmpdir_path, [(bad.url, ["ticket.created"])],
                  top="webhook_retry_scale: 0.00001\n").start()
    try:
        send(s, s.token(role="ingest"), 2, "dead")
        assert wait(lambda: len(db_rows(s, bad.url)) == 2 and all(
            r[1] == "dead" for r in db_rows(s, bad.url)), 30, 0.2), \
            db_rows(s, bad.url)
        for seq, state, attempts, why in db_rows(s, bad.url):
            assert attempts == 8 and why.startswith("HTTP 500"), why
        got = delivered(bad)
        assert len(got) == 2 and all(len(v) == 8 for v in got.values())
    finally:
        assert s.stop() in (0, None)
        bad.close()


@load_test
def test_kill9_while_delivering_loses_nothing(tmpdir_path):
    """SIGKILL while requests are in flight at a slow receiver, restart on
    the same data: every event arrives at least once, with its own
    webhook-id, none missing."""
    slow = {"on": True}
    rcv = Receiver(lambda n, h, b: ("hang", 0.6) if slow["on"] else 200)
    cfg = "webhook_timeout: 5s\nwebhook_retry_scale: 0.001\n"
    s = configure(tmpdir_path, [(rcv.url, None)], top=cfg).start()
    try:
        ingest, reader = s.token(role="ingest"), s.token(role="read")
        for round_ in range(3):
            send(s, ingest, 4, "k%d" % round_)
            n = len(rcv.snapshot())
            assert wait(lambda: len(rcv.snapshot()) > n, 10, 0.01)
            time.sleep(0.05)  # requests in flight, answers not yet sent
            s.kill9()
            s.start()
        slow["on"] = False
        send(s, ingest, 2, "after")
        evs = settle(s, reader, [rcv])
        got = delivered(rcv)
        assert set(got) == set(evs)
        for mid, objs in got.items():
            assert all(o == evs[mid] for o in objs)
        # Some deliveries were cut off by the kill and sent again.
        assert len(rcv.snapshot()) > len(evs)
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def pending_of(server, url):
    return sum(1 for r in db_rows(server, url) if r[1] == "pending")


def test_a_backlog_does_not_starve_another_subscription(tmpdir_path):
    """A slow receiver with a backlog of hundreds of due deliveries (more
    than the sender reads at a time), then a second subscription: its new
    events arrive within a second or two while the first one drains,
    instead of waiting behind the whole backlog. docs/webhooks.md,
    "Concurrency, ordering, waking"."""
    slow = Receiver(lambda n, h, b: ("hang", 0.5))
    fast = Receiver()
    s = configure(tmpdir_path, [(slow.url, None)],
                  top="webhook_concurrency: 4\nwebhook_timeout: 5s\n"
                      "webhook_retry_scale: 0.001\n").start()
    try:
        ingest, reader = s.token(role="ingest"), s.token(role="read")
        send(s, ingest, 120, "backlog")
        # a message's events are one ticket's, sent in turn: one due
        # delivery per ticket, far more than the sender's window of 16
        assert wait(lambda: pending_of(s, slow.url) >= 200, 30, 0.1), \
            pending_of(s, slow.url)
        st, _, doc = s.http_call(
            "POST", "/api/v1/webhooks",
            json.dumps({"url": fast.url,
                        "secrets": [SECRET, OLD]}).encode(),
            s.token(role="admin"), {"Content-Type": "application/json"})
        assert st == 201, doc
        fresh = set()
        for i in range(3):
            before = set(events(s, reader))
            t0 = time.time()
            send(s, ingest, 1, "fresh%d" % i)

            def arrived():
                new = set(events(s, reader)) - before
                return new and new <= set(delivered(fast))
            assert wait(arrived, 30.0, 0.02)
            took = time.time() - t0
            assert took < 2.0, "the fast receiver waited %.2fs" % took
            fresh |= set(events(s, reader)) - before
        # the slow one was still draining its backlog meanwhile
        assert pending_of(s, slow.url) >= 100, pending_of(s, slow.url)
        # the new subscription got exactly the events written after it
        assert set(delivered(fast)) == fresh, (sorted(delivered(fast)),
                                               sorted(fresh))
    finally:
        assert s.stop() in (0, None)
        slow.close()
        fast.close()
