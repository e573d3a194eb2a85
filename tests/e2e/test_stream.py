# SPDX-License-Identifier: Apache-2.0
"""The live event stream (issue 7, "Live stream"): GET /api/v1/stream as
Server-Sent Events, compared with what REST polling gives for the same
events. docs/events.md is the contract."""
import json
import socket
import time

from conftest import message
from test_events import poll_all, send, wait_events


class SSE:
    """A raw-socket SSE client: HTTP/1.1, chunked body, one event at a
    time. Comments (": ...") are kept apart so heartbeats can be seen."""

    def __init__(self, server, token, path="/api/v1/stream", headers=None):
        self.sock = socket.create_connection(("127.0.0.1", server.http),
                                             timeout=10)
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1",
                 "Accept: text/event-stream"]
        if token:
            lines.append("Authorization: Bearer " + token)
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.text = b""  # de-chunked body not yet parsed
        self.comments = []
        self.ended = False
        head = self._until(b"\r\n\r\n")
        status_line, *hdrs = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in hdrs:
            k, _, v = h.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.raw += data

    def _until(self, sep):
        while sep not in self.raw:
            self._recv()
        out, _, self.raw = self.raw.partition(sep)
        return out

    def _chunk(self):
        size = int(self._until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            self.ended = True
            return
        while len(self.raw) < size + 2:
            self._recv()
        self.text += self.raw[:size]
        self.raw = self.raw[size + 2:]

    def next(self, timeout=10.0):
        """-> the next event as a dict (id, event, data), or None when the
        stream ended. Raises socket.timeout when none comes in time."""
        end = time.time() + timeout
        while True:
            while b"\n\n" not in self.text:
                if self.ended:
                    return None
                left = end - time.time()
                if left <= 0:
                    raise socket.timeout("no event in time")
                self.sock.settimeout(left)
                self._chunk()
            block, _, self.text = self.text.partition(b"\n\n")
            ev = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "data":
                    ev["data"] = ev["data"] + "\n" + v if "data" in ev else v
                elif k in ("id", "event", "retry"):
                    ev[k] = v
            if "data" in ev:
                ev["json"] = json.loads(ev["data"])
                return ev

    def take(self, n, timeout=30.0):
        end = time.time() + timeout
        out = []
        while len(out) < n:
            left = end - time.time()
            assert left > 0, "only %d of %d events came" % (len(out), n)
            ev = self.next(timeout=left)
            assert ev is not None, "the stream ended"
            out.append(ev)
        return out

    def quiet(self, seconds):
        """Asserts that no event comes for so long."""
        try:
            ev = self.next(timeout=seconds)
        except (socket.timeout, TimeoutError):
            return
        raise AssertionError("unexpected event %r" % ev)

    def close(self):
        self.sock.close()


def check_same(got, polled):
    """The stream's events are the polled ones, field for field."""
    assert [int(e["id"]) for e in got] == [p["seq"] for p in polled]
    for e, p in zip(got, polled):
        assert e["event"] == p["type"]
        assert e["json"] == p


def test_live_then_resume_without_gaps(server):
    ingest = server.token(role="ingest")
    reader = server.token(role="read")
    # Events from before the stream opened are not sent without a cursor.
    send(server, ingest, 1, subject="before")
    before = wait_events(server, reader, 3)
    s = SSE(server, reader)
    assert s.status == 200
    assert s.headers["content-type"].startswith("text/event-stream")
    assert s.headers["cache-control"] == "no-store"

    send(server, ingest, 3, subject="live")
    got = s.take(9)
    polled = poll_all(server, reader, after=str(before[-1]["seq"]))
    check_same(got, polled)
    s.quiet(0.5)
    s.close()

    # Missed while away: sent again exactly, then the stream follows.
    last = got[-1]["id"]
    send(server, ingest, 2, subject="away")
    wait_events(server, reader, 18)
    s = SSE(server, reader, headers={"Last-Event-ID": last})
    missed = s.take(6)
    check_same(missed, poll_all(server, reader, after=last))
    send(server, ingest, 1, subject="back")
    more = s.take(3)
    check_same(more, poll_all(server, reader, after=missed[-1]["id"]))
    s.quiet(0.5)
    s.close()

    # after= does the same; Last-Event-ID wins over it.
    s = SSE(server, reader, "/api/v1/stream?after=0")
    check_same(s.take(21), poll_all(server, reader))
    s.close()
    s = SSE(server, reader, "/api/v1/stream?after=0",
            headers={"Last-Event-ID": more[-1]["id"]})
    s.quiet(0.5)
    s.close()


def test_types_filter_and_tenants(server):
    ingest = server.token(role="ingest")
    reader = server.token(role="agent")
    other = server.token(tenant="globex", role="read")
    s = SSE(server, reader, "/api/v1/stream?types=ticket.created&after=0")
    o = SSE(server, other, "/api/v1/stream?after=0")
    assert s.status == 200 and o.status == 200
    send(server, ingest, 3, subject="typed")
    got = s.take(3)
    assert [e["event"] for e in got] == ["ticket.created"] * 3
    check_same(got, poll_all(server, reader, types="ticket.created"))
    s.quiet(0.5)
    o.quiet(1.0)
    s.close()
    o.close()


def test_heartbeat(server):
    reader = server.token(role="read")
    s = SSE(server, reader, "/api/v1/stream?heartbeat=1")
    s.quiet(3.5)
    assert s.comments.count(": keepalive") >= 2, s.comments
    s.close()


def test_bad_requests(server):
    reader = server.token(role="read")
    ingest = server.token(role="ingest")
    for q in ("heartbeat=0", "heartbeat=61", "after=x", "types=Bad!"):
        st, _, body = server.http_call("GET", "/api/v1/stream?" + q, None,
                                       reader)
        assert st == 400, (q, body)
    st, _, _ = server.http_call("GET", "/api/v1/stream", None, reader,
                                {"Last-Event-ID": "-3"})
    assert st == 400
    st, _, _ = server.http_call("GET", "/api/v1/stream", None)
    assert st == 401
    st, _, _ = server.http_call("GET", "/api/v1/stream", None, ingest)
    assert st == 403


def test_stream_limit(server):
    reader = server.token(role="read")
    streams = [SSE(server, reader, "/api/v1/stream?heartbeat=1")
               for _ in range(64)]
    assert all(s.status == 200 for s in streams)
    extra = SSE(server, reader)
    assert extra.status == 503
    extra.close()
    streams.pop().close()
    # The slot comes back once the server notices the closed socket (at
    # its next write: a tick or a heartbeat).
    end = time.time() + 20
    while True:
        s = SSE(server, reader, "/api/v1/stream?heartbeat=1")
        if s.status == 200:
            break
        s.close()
        assert time.time() < end, "the slot never came back"
        time.sleep(0.5)
    for t in streams:
        t.close()
    s.close()


def test_stop_with_streams_open(server):
    reader = server.token(role="read")
    ingest = server.token(role="ingest")
    streams = [SSE(server, reader) for _ in range(3)]
    send(server, ingest, 1, subject="stop")
    for s in streams:
        s.take(3)
    t0 = time.time()
    rc = server.stop()
    assert rc == 0
    assert time.time() - t0 < 5, "stop hung on open streams"
    for s in streams:
        # The stream was ended (last chunk) or cut, never left hanging.
        try:
            assert s.next(timeout=2) is None
        except (EOFError, ConnectionError):
            pass
        s.close()
