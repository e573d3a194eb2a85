#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A throwaway SMTP/LMTP sink for checking bench/smtp_load.c.

Speaks just enough ESMTP (EHLO/HELO/LHLO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT; advertises PIPELINING and SIZE) to take
mail from the load generator, keeps nothing but the Message-IDs, and can
misbehave on purpose:

  --fail-every N      answer 451 at end of DATA to every Nth message
  --reject RCPT       answer 550 to RCPT TO:<RCPT> (repeatable)
  --close-after N     say 421 and hang up after N messages on a connection
  --silent-close      with --close-after, hang up without the 421
  --die-after N       os._exit(1) when message N arrives, before replying
                      (a crash: the generator must count it unanswered)
  --no-pipelining     do not advertise PIPELINING
  --record FILE       append the Message-ID of every message answered 250
                      (flushed per line), to compare with smtp_load --acked
  --dump DIR          write every message (unstuffed) to DIR/<n>.eml

Prints "PORT <n>" on stdout once listening (--port 0 picks a free port).
Also a quick ceiling for the generator itself: how many messages per
second it pushes through a sink that does nothing.

Usage: smtp_sink.py [--host 127.0.0.1] [--port 0] [--lmtp] [options above]
"""
import argparse
import os
import re
import socket
import socketserver
import sys
import threading

MAX_LINE = 8192
MAX_MESSAGE = 64 << 20


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.messages = 0
        self.record = open(args.record, "a") if args.record else None

    def next_number(self):
        with self.lock:
            self.messages += 1
            return self.messages

    def recorded(self, mid):
        if self.record:
            with self.lock:
                self.record.write(mid + "\n")
                self.record.flush()


MID = re.compile(rb"^message-id:\s*<([^>\r\n]*)>", re.I | re.M)


class Handler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        # Replies go out one write each; without this, Nagle holds the
        # second reply of a pipelined batch until the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        st = self.server.state
        a = st.args
        self.reply("220 sink.invalid ESMTP smtp_sink")
        mail = None
        rcpts = []
        served = 0
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return
            if not line.endswith(b"\n"):
                self.reply("500 line too long")
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "LHLO"):
                if (verb == "LHLO") != a.lmtp:
                    self.reply("500 wrong protocol")
                    continue
                caps = ["sink.invalid"] + (
                    [] if a.no_pipelining else ["PIPELINING"]) + [
                        "SIZE %d" % MAX_MESSAGE, "8BITMIME"]
                for c in caps[:-1]:
                    self.reply("250-" + c)
                self.reply("250 " + caps[-1])
            elif verb == "HELO":
                self.reply("250 sink.invalid")
            elif verb == "MAIL":
                if mail is not None:
                    self.reply("503 5.5.1 nested MAIL")
                    continue
                mail = cmd
                rcpts = []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                if mail is None:
                    self.reply("503 5.5.1 need MAIL")
                    continue
                m = re.search(r"<([^>]*)>", cmd)
                addr = m.group(1) if m else ""
                if addr in a.reject:
                    self.reply("550 5.1.1 no such user")
                    continue
                rcpts.append(addr)
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                if mail is None or not rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 go ahead")
                body = self.read_data()
                if body is None:
                    return
                n = st.next_number()
                if a.die_after and n >= a.die_after:
                    os._exit(1)
                if a.dump:
                    with open(os.path.join(a.dump, "%d.eml" % n), "wb") as f:
                        f.write(body)
                m = MID.search(body)
                mid = m.group(1).decode("utf-8", "replace") if m else ""
                ok = not (a.fail_every and n % a.fail_every == 0)
                if ok:
                    st.recorded(mid)  # before the 250, like a real server
                for _ in (rcpts if a.lmtp else [None]):
                    self.reply("250 2.0.0 ok" if ok else
                               "451 4.3.0 try again later")
                mail = None
                served += 1
                if a.close_after and served >= a.close_after:
                    if not a.silent_close:
                        self.reply("421 4.3.2 closing, come back")
                    return
            elif verb == "RSET":
                mail = None
                self.reply("250 2.0.0 ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("500 5.5.2 unknown command")

    def read_data(self):
        parts = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(parts)
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > MAX_MESSAGE:
                return None
            parts.append(line)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lmtp", action="store_true")
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--close-after", type=int, default=0)
    ap.add_argument("--silent-close", action="store_true")
    ap.add_argument("--die-after", type=int, default=0)
    ap.add_argument("--record")
    ap.add_argument("--dump")
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    srv.state = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
