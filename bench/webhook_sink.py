#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A fast loopback webhook receiver for `make bench-deliver`.

asyncio with a bare Protocol (no http.server: its thread per request and
line-by-line parsing would be the bottleneck long before mailroom).
HTTP/1.1 keep-alive, answers 204 to every POST. For each request it
prints one line on stdout:

    <CLOCK_MONOTONIC s> <webhook-id> <message_id or -> <wall-clock ms> <the
    event's created_at, ms since 1970, or ->

(message_id: the event payload's, found by a plain search rather than a
JSON parse). CLOCK_MONOTONIC is one clock for every process of the
machine, so the bench compares these times with its own. Listens on
127.0.0.1:PORT (argv[1]; 0: any, the port is printed first as
"port N"). Ends when stdin closes. Bounded: a request head over 64 KiB
or a body over 4 MiB closes the connection.
"""
import asyncio
import calendar
import re
import sys
import time

HEAD_MAX = 64 * 1024
BODY_MAX = 4 * 1024 * 1024
MID = re.compile(rb'"message_id":"([^"]{1,300})"')
CREATED = re.compile(rb'"created_at":"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):'
                     rb'(\d\d)\.(\d{3})Z"')
RESP = (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
        b"Connection: keep-alive\r\n\r\n")
out = sys.stdout.buffer


class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        lines = []
        # Bounded: each turn consumes one whole request from the buffer.
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > HEAD_MAX:
                    self.t.close()
                break
            head = self.buf[:end].lower()
            n = 0
            wid = b"-"
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k == b"content-length":
                    n = int(v.strip() or b"0")
                elif k == b"webhook-id":
                    wid = v.strip()
            if n > BODY_MAX:
                self.t.close()
                break
            if len(self.buf) < end + 4 + n:
                break
            body = self.buf[end + 4:end + 4 + n]
            self.buf = self.buf[end + 4 + n:]
            m = MID.search(body)
            c = CREATED.search(body)
            created = b"-"
            if c:
                g = [int(x) for x in c.groups()]
                created = b"%d" % (calendar.timegm(
                    (g[0], g[1], g[2], g[3], g[4], g[5], 0, 0, 0)) * 1000 +
                    g[6])
            lines.append(b"%.6f %s %s %.3f %s\n" % (
                time.monotonic(), wid, m.group(1) if m else b"-",
                time.time() * 1000.0, created))
            self.t.write(RESP)
        if lines:
            out.write(b"".join(lines))
            out.flush()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Sink, "127.0.0.1", port, backlog=512)
    out.write(b"port %d\n" % srv.sockets[0].getsockname()[1])
    out.flush()
    # stdin closing is the signal to stop
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    srv.close()


if __name__ == "__main__":
    asyncio.run(main())
