# SPDX-License-Identifier: Apache-2.0
"""Agents change tickets (PATCH /api/v1/tickets/{id}, `mailroom tickets
update`) and every change to a ticket leaves a ticket.updated event with
the fields that changed, before and after (docs/events.md, docs/api.md)."""
import json
import time

from conftest import message

CT = {"Content-Type": "message/rfc822"}
JSON = {"Content-Type": "application/json"}


def problem(resp):
    status, hdrs, body = resp
    assert hdrs.get("Content-Type", "").startswith(
        "application/problem+json"), (status, hdrs, body)
    doc = json.loads(body)
    assert doc["status"] == status
    return status, doc


def patch(server, tid, body, token, headers=None):
    h = dict(JSON)
    h.update(headers or {})
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.http_call("PATCH", "/api/v1/tickets/%d" % tid, raw, token, h)


def updates(server, token, after=0):
    st, page = server.json_call(
        "GET", "/api/v1/events?after=%d&types=ticket.updated&limit=1000" %
        after, token)
    assert st == 200, page
    return page["events"]


def head(server, token):
    st, page = server.json_call("GET", "/api/v1/events?after=0&limit=1000",
                                token)
    assert st == 200, page
    return page["events"][-1]["seq"] if page["events"] else 0


def one_ticket(server, msgid=None, subject="Printer on fire"):
    ingest = server.token(role="ingest")
    reader = server.token(role="read")
    st, _, body = server.http_call(
        "POST", "/api/v1/messages", message(subject=subject, msgid=msgid),
        ingest, CT)
    assert st == 202, body
    tickets = server.wait_stored(reader, 1)
    assert tickets, "the message was not stored"
    return tickets[0], ingest, reader


def test_patch_each_field_writes_its_before_and_after(server):
    t, _, reader = one_ticket(server)
    agent = server.token(role="agent")
    tid = t["id"]
    assert t["status"] == "new" and t["version"] == 1
    steps = [
        ({"status": "pending"}, "status", "new", "pending"),
        ({"priority": "high"}, "priority", "normal", "high"),
        ({"queue": "billing"}, "queue", None, "billing"),
        ({"assignee": "bob@acme.test"}, "assignee", None, "bob@acme.test"),
        ({"assignee": None}, "assignee", "bob@acme.test", None),
        ({"queue": None}, "queue", "billing", None),
        ({"status": "solved"}, "status", "pending", "solved"),
    ]
    for i, (body, field, before, after) in enumerate(steps):
        mark = head(server, reader)
        st, hdrs, raw = patch(server, tid, body, agent)
        assert st == 200, raw
        doc = json.loads(raw)
        assert doc["version"] == 2 + i
        assert hdrs["ETag"] == '"%d"' % doc["version"]
        # The answer is the ticket exactly as GET gives it.
        st, got = server.json_call("GET", "/api/v1/tickets/%d" % tid, reader)
        assert st == 200 and got == doc
        assert doc[field] == after
        evs = updates(server, reader, mark)
        assert len(evs) == 1, evs
        ev = evs[0]
        assert ev["type"] == "ticket.updated" and ev["ticket_id"] == tid
        p = ev["payload"]
        assert p["ticket_id"] == tid and p["ticket_number"] == t["number"]
        assert p["actor"].startswith("api:mrt_")
        assert agent.startswith(p["actor"][4:])
        assert p["version"] == doc["version"]
        assert p["changes"] == {field: {"before": before, "after": after}}


def test_tags_replace_add_remove(server):
    t, _, reader = one_ticket(server)
    agent = server.token(role="agent")
    tid = t["id"]

    mark = head(server, reader)
    st, _, raw = patch(server, tid, {"tags": ["vip", "billing", "vip"]},
                       agent)
    assert st == 200, raw
    assert json.loads(raw)["tags"] == ["vip", "billing"]
    (ev,) = updates(server, reader, mark)
    assert ev["payload"]["changes"] == {"tags": {
        "before": [], "after": ["vip", "billing"],
        "added": ["vip", "billing"], "removed": []}}

    mark = head(server, reader)
    st, _, raw = patch(server, tid, {"tags_add": ["urgent-customer"],
                                     "tags_remove": ["billing", "absent"]},
                       agent)
    assert st == 200, raw
    assert json.loads(raw)["tags"] == ["vip", "urgent-customer"]
    (ev,) = updates(server, reader, mark)
    assert ev["payload"]["changes"]["tags"] == {
        "before": ["vip", "billing"], "after": ["vip", "urgent-customer"],
        "added": ["urgent-customer"], "removed": ["billing"]}

    # The same set in another order is no change.
    mark = head(server, reader)
    st, _, raw = patch(server, tid, {"tags": ["urgent-customer", "vip"]},
                       agent)
    assert st == 200
    assert json.loads(raw)["tags"] == ["vip", "urgent-customer"]
    assert updates(server, reader, mark) == []


def test_several_fields_in_one_patch_one_event(server):
    t, _, reader = one_ticket(server)
    admin = server.token(role="admin")
    mark = head(server, reader)
    st, _, raw = patch(server, t["id"], {
        "status": "open", "priority": "urgent", "queue": "ops",
        "tags_add": ["outage"]}, admin)
    assert st == 200, raw
    (ev,) = updates(server, reader, mark)
    ch = ev["payload"]["changes"]
    assert set(ch) == {"status", "priority", "queue", "tags"}
    assert ch["priority"] == {"before": "normal", "after": "urgent"}
    assert ch["tags"]["added"] == ["outage"]


def test_noop_patch_writes_no_event(server):
    t, _, reader = one_ticket(server)
    agent = server.token(role="agent")
    st, _, raw = patch(server, t["id"], {"priority": "high"}, agent)
    assert st == 200
    version = json.loads(raw)["version"]
    mark = head(server, reader)
    for body in ({}, {"priority": "high"}, {"queue": None},
                 {"tags_remove": ["never-there"]}, {"tags": []}):
        st, hdrs, raw = patch(server, t["id"], body, agent)
        assert st == 200, raw
        doc = json.loads(raw)
        assert doc["version"] == version and doc["priority"] == "high"
        assert hdrs["ETag"] == '"%d"' % version
    assert head(server, reader) == mark


def test_validation_errors_name_the_field(server):
    t, _, _ = one_ticket(server)
    agent = server.token(role="agent")
    tid = t["id"]
    cases = [
        ({"status": "bogus"}, 422, "status"),
        ({"status": "new"}, 422, "status"),
        ({"status": None}, 400, "status"),
        ({"priority": 5}, 400, "priority"),
        ({"priority": "critical"}, 422, "priority"),
        ({"queue": ""}, 422, "queue"),
        ({"queue": "x" * 129}, 422, "queue"),
        ({"assignee": ["a"]}, 400, "assignee"),
        ({"assignee": "bad\u0007bell"}, 422, "assignee"),
        ({"tags": "vip"}, 400, "tags"),
        ({"tags": [1]}, 400, "tags"),
        ({"tags": ["t" * 65]}, 422, "tags"),
        ({"tags": ["t%d" % i for i in range(101)]}, 422, "tags"),
        ({"tags": ["a"], "tags_add": ["b"]}, 422, "tags"),
        ({"tags_add": ["a"], "tags_remove": ["a"]}, 422, "tags_remove"),
        ({"version": "3"}, 400, "version"),
        ({"stauts": "open"}, 400, "stauts"),
    ]
    for body, status, field in cases:
        st, doc = problem(patch(server, tid, body, agent))
        assert (st, doc.get("field")) == (status, field), (body, doc)
        assert field in doc["detail"]
    assert problem(patch(server, tid, b"{not json", agent))[0] == 400
    assert problem(patch(server, tid, b"[1]", agent))[0] == 400
    assert problem(patch(server, tid, b'{"status":"open","status":"open"}',
                         agent))[0] == 400
    assert problem(patch(server, tid, {"status": "open"}, agent,
                         {"Content-Type": "text/plain"}))[0] == 415
    assert problem(patch(server, 999999, {"status": "open"}, agent))[0] == 404
    # Nothing of the refused patches was applied.
    st, got = server.json_call("GET", "/api/v1/tickets/%d" % tid, agent)
    assert got["version"] == 1 and got["status"] == "new"


def test_roles_and_tenants(server):
    t, ingest, reader = one_ticket(server)
    tid = t["id"]
    st, doc = problem(patch(server, tid, {"status": "open"}, reader))
    assert st == 403 and "read" in doc["detail"]
    assert problem(patch(server, tid, {"status": "open"}, ingest))[0] == 403
    assert problem(patch(server, tid, {"status": "open"}, None))[0] == 401
    other = server.token(tenant="globex", role="agent")
    assert problem(patch(server, tid, {"status": "open"}, other))[0] == 404
    st, got = server.json_call("GET", "/api/v1/tickets/%d" % tid, reader)
    assert got["status"] == "new"


def test_if_match_and_version(server):
    t, _, reader = one_ticket(server)
    agent = server.token(role="agent")
    tid = t["id"]
    st, hdrs, _ = server.http_call("GET", "/api/v1/tickets/%d" % tid, None,
                                   reader)
    assert st == 200 and hdrs["ETag"] == '"1"'
    st, hdrs, _ = patch(server, tid, {"status": "open"}, agent,
                        {"If-Match": '"1"'})
    assert st == 200 and hdrs["ETag"] == '"2"'
    # Someone else's change since: refused, nothing written.
    mark = head(server, reader)
    st, doc = problem(patch(server, tid, {"status": "closed"}, agent,
                            {"If-Match": '"1"'}))
    assert st == 412 and "version 2" in doc["detail"]
    assert problem(patch(server, tid, {"status": "closed"}, agent,
                         {"If-Match": "garbage"}))[0] == 412
    assert problem(patch(server, tid, {"status": "closed", "version": 1},
                         agent))[0] == 409
    assert head(server, reader) == mark
    st, _, raw = patch(server, tid, {"status": "closed", "version": 2}, agent,
                       {"If-Match": 'W/"2"'})
    assert st == 200 and json.loads(raw)["status"] == "closed"
    st, _, raw = patch(server, tid, {"priority": "low"}, agent,
                       {"If-Match": "*"})
    assert st == 200 and json.loads(raw)["version"] == 4


def wait_for(fn, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def test_reply_reopening_a_solved_ticket_emits_status_change(server):
    """A verified reply reopens a solved ticket (docs/threading.md; a reply
    to a closed ticket starts a new linked ticket instead, see below)."""
    first = "<first-%d@customer.test>" % time.time_ns()
    t, ingest, reader = one_ticket(server, msgid=first)
    agent = server.token(role="agent")
    st, _, raw = patch(server, t["id"], {"status": "solved"}, agent)
    assert st == 200, raw
    mark = head(server, reader)
    st, _, body = server.http_call(
        "POST", "/api/v1/messages",
        message(subject="Re: Printer on fire", body="Still burning.\n",
                extra="In-Reply-To: %s\r\n" % first), ingest, CT)
    assert st == 202, body
    evs = wait_for(lambda: updates(server, reader, mark))
    assert len(evs) == 1, evs
    p = evs[0]["payload"]
    assert p["actor"] == "reply" and p["threaded_by"] == "in_reply_to"
    assert p["changes"] == {"status": {"before": "solved", "after": "open"}}
    assert p["version"] == 3 and p["message_row"] > 0
    st, got = server.json_call("GET", "/api/v1/tickets/%d" % t["id"], reader)
    assert got["status"] == "open" and got["version"] == 3

    # A reply that changes no field still says so: changes is {}.
    mark = head(server, reader)
    st, _, body = server.http_call(
        "POST", "/api/v1/messages",
        message(subject="Re: Printer on fire", body="And now?\n",
                extra="In-Reply-To: %s\r\n" % first), ingest, CT)
    assert st == 202
    evs = wait_for(lambda: updates(server, reader, mark))
    assert evs[0]["payload"]["changes"] == {}


def test_reply_to_closed_ticket_leaves_it_closed(server):
    first = "<closed-%d@customer.test>" % time.time_ns()
    t, ingest, reader = one_ticket(server, msgid=first)
    agent = server.token(role="agent")
    assert patch(server, t["id"], {"status": "closed"}, agent)[0] == 200
    mark = head(server, reader)
    st, _, _ = server.http_call(
        "POST", "/api/v1/messages",
        message(subject="Re: Printer on fire",
                extra="In-Reply-To: %s\r\n" % first), ingest, CT)
    assert st == 202
    assert len(server.wait_stored(reader, 2)) == 2
    st, page = server.json_call(
        "GET", "/api/v1/events?after=%d&types=ticket.created,ticket.updated" %
        mark, reader)
    assert [e["type"] for e in page["events"]] == ["ticket.created"]
    st, got = server.json_call("GET", "/api/v1/tickets/%d" % t["id"], reader)
    assert got["status"] == "closed"


def test_cli_update_writes_the_same_event(server):
    t, _, reader = one_ticket(server)
    mark = head(server, reader)
    r = server.cli("tickets", "update", str(t["number"]), "--tenant", "acme",
                   "--status", "pending", "--add-tags", "a,b", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "pending" and doc["tags"] == ["a", "b"]
    (ev,) = updates(server, reader, mark)
    assert ev["payload"]["actor"] == "cli"
    assert ev["payload"]["changes"]["status"] == {"before": "new",
                                                  "after": "pending"}
    r = server.cli("tickets", "update", str(t["number"]), "--tenant", "acme",
                   "--status", "pending")
    assert r.returncode == 0 and b"unchanged" in r.stdout
    r = server.cli("tickets", "update", str(t["number"]), "--tenant", "acme",
                   "--status", "bogus")
    assert r.returncode == 64 and b"status" in r.stderr
