# SPDX-License-Identifier: Apache-2.0
"""A job that cannot be processed ends in the dead-letter queue with its
reason; `mailroom dlq` shows it and puts it back once the cause is fixed."""
import hashlib
import json
import os
import time

from conftest import Server, message


def wait_dead(server, n, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        out = server.cli("dlq", "list").stdout.decode().splitlines()
        if len(out) - 1 >= n:
            return out[1:]
        time.sleep(0.1)
    return []


def test_lost_spool_file_dead_lettered_then_retried(tmpdir_path):
    # The blob folder's path: small messages are otherwise in the database.
    s = Server(tmpdir_path, inline_max=0)
    msg = message(subject="restored from backup")
    # Queued by the pipe while the server is down...
    r = s.cli("ingest", "--rcpt", "support@acme.test", stdin=msg)
    assert r.returncode == 0, r.stderr
    # ...then its spooled bytes are lost (a bad disk, an operator's rm).
    key = hashlib.sha256(msg).hexdigest()
    blob = os.path.join(s.data, "blobs", key[:2], key)
    assert os.path.exists(blob)
    os.unlink(blob)
    s.start()
    try:
        rows = wait_dead(s, 1)
        assert len(rows) == 1, rows
        job = rows[0].split()[0]
        shown = s.cli("dlq", "show", job)
        assert shown.returncode == 0
        doc = json.loads(shown.stdout)
        assert doc["state"] == "dead" and doc["channel"] == "pipe"
        assert "missing" in doc["last_error"], doc
        # Restored from a backup: the retry stores it.
        with open(blob, "wb") as f:
            f.write(msg)
        r = s.cli("dlq", "retry", job)
        assert r.returncode == 0, r.stderr
        tok = s.token()
        tickets = s.wait_stored(tok, 1)
        assert [t["subject"] for t in tickets] == ["restored from backup"]
        assert s.cli("dlq", "list").stdout.decode().count("\n") == 1
        assert s.cli("dlq", "retry", "999999").returncode == 65
        assert s.cli("dlq", "show", "abc").returncode == 64
        assert s.cli("dlq", "retry", "--all").returncode == 0
    finally:
        assert s.stop() == 0
