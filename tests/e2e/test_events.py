# SPDX-License-Identifier: Apache-2.0
"""REST polling of the outbox (issue 7): cursor polling, consumer groups
with leases, acks, and tenant scoping. docs/events.md is the contract."""
import json
import threading
import time

from conftest import message

CT = {"Content-Type": "message/rfc822"}
JSON = {"Content-Type": "application/json"}


def send(server, ingest, n, to="support@acme.test", subject="poll"):
    for i in range(n):
        st, _, body = server.http_call(
            "POST", "/api/v1/messages",
            message(subject="%s %d" % (subject, i), to=to), ingest, CT)
        assert st == 202, body


def wait_events(server, token, count, timeout=60.0):
    """Polls until the tenant has at least count events -> all of them."""
    end = time.time() + timeout
    events = []
    while time.time() < end:
        events = poll_all(server, token)
        if len(events) >= count:
            return events
        time.sleep(0.2)
    return events


def poll_all(server, token, after="0", limit=7, types=None):
    out, cursor = [], after
    for _ in range(10000):
        path = "/api/v1/events?after=%s&limit=%d" % (cursor, limit)
        if types:
            path += "&types=" + types
        st, page = server.json_call("GET", path, token)
        assert st == 200, page
        out += page["events"]
        if not page["events"]:
            assert page["next_cursor"] == cursor
            break
        assert page["next_cursor"] == str(page["events"][-1]["seq"])
        cursor = page["next_cursor"]
    return out


def test_poll_with_cursor_no_gaps_no_repeats(server):
    ingest = server.token(role="ingest")
    reader = server.token(role="read")
    send(server, ingest, 4)
    events = wait_events(server, reader, 12)
    assert len(events) == 12
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for e in events:
        assert e["id"] == "evt_%d" % e["seq"]
        assert e["created_at"].endswith("Z") and "T" in e["created_at"]
        assert e["ticket_id"] == e["payload"]["ticket_id"]
    types = [e["type"] for e in events]
    assert types.count("email.received") == 4
    assert types.count("ticket.created") == 4
    assert types.count("message.added") == 4
    # email.received carries the whole normalized event.
    rec = [e for e in events if e["type"] == "email.received"]
    assert rec[0]["payload"]["event"]["subject"].startswith("poll ")
    assert rec[0]["payload"]["event"]["message_id"] == \
        rec[0]["payload"]["message_id"]
    assert "event" not in [e for e in events
                           if e["type"] == "message.added"][0]["payload"]

    # Page by page from the middle: exactly the rest, in order.
    rest = poll_all(server, reader, after=str(seqs[4]), limit=3)
    assert [e["seq"] for e in rest] == seqs[5:]

    # The types filter.
    only = poll_all(server, reader, types="ticket.created,message.added")
    assert sorted(e["seq"] for e in only) == sorted(
        e["seq"] for e in events if e["type"] != "email.received")

    # Another tenant sees none of them.
    other = server.token(tenant="globex", role="read")
    st, page = server.json_call("GET", "/api/v1/events?after=0", other)
    assert st == 200 and page["events"] == [] and page["next_cursor"] == "0"


def test_bad_input_is_400(server):
    reader = server.token(role="read")
    for q in ("after=-1", "after=abc", "after=01", "limit=0", "limit=1001",
              "types=", "types=Bad!", "types=a,,b"):
        st, _, body = server.http_call("GET", "/api/v1/events?" + q, None,
                                        reader)
        assert st == 400, (q, body)
        assert json.loads(body)["status"] == 400
    st, _, _ = server.http_call("GET", "/api/v1/events", None)
    assert st == 401
    st, _, _ = server.http_call("POST", "/api/v1/consumers/g/claim?limit=0",
                                None, reader)
    assert st == 400
    st, _, _ = server.http_call("POST", "/api/v1/consumers/g/claim?lease=0",
                                None, reader)
    assert st == 400
    for body in (b"", b"{}", b"[]", b'{"cursor": "x"}', b'{"cursor": 0}'):
        st, _, _ = server.http_call("POST", "/api/v1/consumers/g/ack", body,
                                    reader, JSON)
        assert st == 400, body
    # A cursor that was never leased to this group.
    st, _, _ = server.http_call("POST", "/api/v1/consumers/g/ack",
                                b'{"cursor": "12345"}', reader, JSON)
    assert st == 409


def claim(server, token, group, limit=10, lease=None):
    path = "/api/v1/consumers/%s/claim?limit=%d" % (group, limit)
    if lease:
        path += "&lease=%d" % lease
    st, doc = server.json_call("POST", path, token)
    assert st == 200, doc
    return doc


def ack(server, token, group, cursor, lease_id=None):
    body = {"cursor": cursor}
    if lease_id:
        body["lease_id"] = lease_id
    st, _, data = server.http_call(
        "POST", "/api/v1/consumers/%s/ack" % group,
        json.dumps(body).encode(), token, JSON)
    return st


def test_two_consumers_process_each_event_once(server):
    ingest = server.token(role="ingest")
    reader = server.token(role="read")
    n = 70
    send(server, ingest, n, subject="group")
    events = wait_events(server, reader, 3 * n)
    want = {e["seq"] for e in events}
    assert len(want) == 3 * n

    seen = []
    lock = threading.Lock()
    errors = []

    def consumer():
        tok = server.token(role="read")
        idle = 0
        while idle < 3:
            doc = claim(server, tok, "workers", limit=9)
            if not doc["events"]:
                idle += 1
                time.sleep(0.1)
                continue
            idle = 0
            with lock:
                seen.extend(e["seq"] for e in doc["events"])
            assert doc["cursor"] == str(doc["events"][-1]["seq"])
            st = ack(server, tok, "workers", doc["cursor"], doc["lease_id"])
            if st != 204:
                errors.append(st)
            # A repeated ack is harmless.
            if ack(server, tok, "workers", doc["cursor"]) != 204:
                errors.append("repeat")

    threads = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert sorted(seen) == sorted(want), "each event exactly once"
    # The other tenant's group sees nothing, this group nothing more.
    assert claim(server, reader, "workers")["events"] == []
    other = server.token(tenant="globex", role="read")
    assert claim(server, other, "workers")["events"] == []


def test_unacked_batch_is_offered_again(server):
    ingest = server.token(role="ingest")
    reader = server.token(role="read")
    send(server, ingest, 2, subject="lease")
    wait_events(server, reader, 6)

    first = claim(server, reader, "slow", limit=4, lease=1)
    assert len(first["events"]) == 4 and first["lease_expires_at"]
    # Another claimer gets the batch after it, never the same one.
    second = claim(server, reader, "slow", limit=4, lease=30)
    assert [e["seq"] for e in second["events"]] and \
        second["events"][0]["seq"] > first["events"][-1]["seq"]
    # The first claimer dies; after its lease the batch comes back whole.
    time.sleep(1.3)
    again = claim(server, reader, "slow", limit=1, lease=30)
    assert [e["seq"] for e in again["events"]] == \
        [e["seq"] for e in first["events"]]
    assert again["cursor"] == first["cursor"]
    assert again["lease_id"] != first["lease_id"]
    # The dead claimer's late ack is refused; the new holder's goes in.
    assert ack(server, reader, "slow", first["cursor"],
               first["lease_id"]) == 409
    assert ack(server, reader, "slow", again["cursor"],
               again["lease_id"]) == 204
    assert ack(server, reader, "slow", second["cursor"]) == 204
    assert claim(server, reader, "slow")["events"] == []
