# SPDX-License-Identifier: Apache-2.0
"""`mailroom ingest`, the MTA pipe transport: exit codes are the protocol."""
from conftest import message


def test_ingest_stores_and_exits_0(server):
    tok = server.token()
    r = server.cli("ingest", "--rcpt", "support@acme.test", "--from",
                   "a@customer.test", stdin=message(subject="piped"))
    assert r.returncode == 0, r.stderr
    assert server.wait_stored(tok, 1)[0]["subject"] == "piped"


def test_ingest_recipients_from_headers(server):
    tok = server.token(tenant="globex")
    r = server.cli("ingest", stdin=message(subject="headers",
                                           to="ops@globex.test"))
    assert r.returncode == 0, r.stderr
    assert server.wait_stored(tok, 1)[0]["subject"] == "headers"


def test_ingest_plus_tag_kept(server):
    tok = server.token()
    r = server.cli("ingest", "--rcpt", "help+billing@acme.test",
                   stdin=message(subject="tagged"))
    assert r.returncode == 0, r.stderr
    t = server.wait_stored(tok, 1)[0]
    _, full = server.json_call("GET", "/api/v1/tickets/%d" % t["id"], tok)
    assert full["messages"][0]["inbox"] == "help"
    assert full["messages"][0]["tag"] == "billing"


def test_ingest_refusals(server):
    assert server.cli("ingest", "--rcpt", "support@acme.test",
                      stdin=b"").returncode == 65
    assert server.cli("ingest", "--rcpt", "nobody@nowhere.test",
                      stdin=message()).returncode == 67
    big = message(body="q" * 1_200_000)
    assert server.cli("ingest", "--rcpt", "support@acme.test",
                      stdin=big).returncode == 65
    assert server.cli("ingest", "--bogus").returncode == 64


def test_ingest_without_server_then_serve_picks_it_up(tmpdir_path):
    """The pipe writes to the store directly: no server needed to accept."""
    from conftest import Server
    s = Server(tmpdir_path)
    r = s.cli("ingest", "--rcpt", "support@acme.test",
              stdin=message(subject="queued while down"))
    assert r.returncode == 0, r.stderr
    s.start()
    try:
        tok = s.token()
        assert s.wait_stored(tok, 1)[0]["subject"] == "queued while down"
    finally:
        assert s.stop() == 0
