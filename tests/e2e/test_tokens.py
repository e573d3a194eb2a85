# SPDX-License-Identifier: Apache-2.0
"""Short-lived tokens: POST /api/v1/tokens/exchange trades a long-lived
token for one that expires, of the same or a narrower role, never a wider
one (docs/api.md)."""
import datetime
import json
import re
import time

JSON = {"Content-Type": "application/json"}


def problem(resp):
    status, hdrs, body = resp
    assert hdrs.get("Content-Type", "").startswith(
        "application/problem+json"), (status, hdrs, body)
    doc = json.loads(body)
    assert doc["status"] == status
    return status, doc


def exchange(server, token, body=None):
    raw = None if body is None else json.dumps(body).encode()
    return server.http_call("POST", "/api/v1/tokens/exchange", raw, token,
                            JSON if body is not None else None)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_exchange_same_role_default_ttl(server):
    reader = server.token(role="read")
    before = time.time()
    st, hdrs, raw = exchange(server, reader)
    assert st == 201, raw
    assert "no-store" in hdrs.get("Cache-Control", "")
    doc = json.loads(raw)
    assert doc["role"] == "read" and doc["expires_in"] == 900
    assert doc["token_type"] == "Bearer"
    assert re.fullmatch(r"mrt_[A-Za-z0-9_-]{43}", doc["token"])
    assert doc["token"] != reader
    exp = parse_time(doc["expires_at"])
    assert before + 899 <= exp <= time.time() + 901
    st, page = server.json_call("GET", "/api/v1/tickets", doc["token"])
    assert st == 200, page
    # Listed, with where it came from.
    r = server.cli("token", "list", check=True)
    assert b"expires" in r.stdout


def test_narrower_role_only(server):
    admin = server.token(role="admin")
    agent = server.token(role="agent")
    reader = server.token(role="read")
    ingest = server.token(role="ingest")
    ok = [(admin, "read"), (admin, "agent"), (admin, "ingest"),
          (agent, "read"), (agent, "agent"), (reader, "read"),
          (ingest, "ingest")]
    for tok, role in ok:
        st, _, raw = exchange(server, tok, {"role": role, "ttl": 60})
        assert st == 201, (role, raw)
        assert json.loads(raw)["role"] == role
    wider = [(agent, "admin"), (reader, "agent"), (reader, "admin"),
             (ingest, "read"), (agent, "ingest")]
    for tok, role in wider:
        st, doc = problem(exchange(server, tok, {"role": role}))
        assert st == 403 and doc["field"] == "role", doc
    # A read token from an admin cannot write.
    st, _, raw = exchange(server, admin, {"role": "read"})
    short = json.loads(raw)["token"]
    st, doc = problem(server.http_call(
        "PATCH", "/api/v1/tickets/1", b'{"status":"open"}', short, JSON))
    assert st == 403


def test_expired_token_refused_with_reason(server):
    agent = server.token(role="agent")
    st, _, raw = exchange(server, agent, {"ttl": 1})
    assert st == 201, raw
    short = json.loads(raw)["token"]
    assert server.json_call("GET", "/api/v1/tickets", short)[0] == 200
    # Bounded wait: the token expires one second after it was made.
    end = time.time() + 10
    status = 200
    while time.time() < end:
        resp = server.http_call("GET", "/api/v1/tickets", None, short)
        status = resp[0]
        if status != 200:
            break
        time.sleep(0.2)
    st, doc = problem(resp)
    assert st == 401 and "expired" in doc["detail"], doc
    assert "invalid_token" in resp[1].get("WWW-Authenticate", "")
    # The long-lived token is unaffected.
    assert server.json_call("GET", "/api/v1/tickets", agent)[0] == 200


def test_short_lived_cannot_be_exchanged(server):
    admin = server.token(role="admin")
    short = json.loads(exchange(server, admin)[2])["token"]
    st, doc = problem(exchange(server, short))
    assert st == 403 and "long-lived" in doc["detail"]


def test_revoking_the_parent_ends_the_child(server):
    reader = server.token(role="read")
    short = json.loads(exchange(server, reader)[2])["token"]
    assert server.json_call("GET", "/api/v1/tickets", short)[0] == 200
    r = server.cli("token", "list", "--tenant", "acme", check=True)
    line = [ln for ln in r.stdout.decode().splitlines()
            if reader[:12] in ln][0]
    server.cli("token", "revoke", line.split()[0], check=True)
    assert problem(server.http_call("GET", "/api/v1/tickets", None,
                                    short))[0] == 401


def test_bad_requests(server):
    admin = server.token(role="admin")
    cases = [({"ttl": 0}, 422, "ttl"), ({"ttl": 3601}, 422, "ttl"),
             ({"ttl": "60"}, 400, "ttl"), ({"ttl": 1.5}, 400, "ttl"),
             ({"role": "root"}, 422, "role"), ({"role": 1}, 400, "role"),
             ({"scope": "x"}, 400, "scope")]
    for body, status, field in cases:
        st, doc = problem(exchange(server, admin, body))
        assert (st, doc.get("field")) == (status, field), (body, doc)
    assert problem(server.http_call("POST", "/api/v1/tokens/exchange",
                                    b"[]", admin, JSON))[0] == 400
    assert problem(server.http_call("POST", "/api/v1/tokens/exchange",
                                    b'{"ttl": 5}', admin,
                                    {"Content-Type": "text/plain"}))[0] == 415
    assert problem(exchange(server, None))[0] == 401
    assert problem(exchange(server, "mrt_" + "x" * 43))[0] == 401
    st, doc = problem(server.http_call("GET", "/api/v1/tokens/exchange", None,
                                       admin))
    assert st == 405
