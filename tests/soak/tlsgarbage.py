#!/usr/bin/env python3
"""Hostile TLS clients for the soak, until a stop file appears.

Against a `tls = terminate` VIP and a `tls = route` VIP, at once: random
bytes, ClientHellos cut short, a record header announcing 64 KiB, a whole
hello followed by garbage, and plain HTTP. Each such connection then closes
at once, half-closes and waits, or stays silent and waits: the proxy must
close it within --close-within seconds. Between them, valid HTTPS requests
(certificate and name verified) to both VIPs must succeed.

Prints one line of key=value counters at the end, such as
  garbage=1200 closed=1200 not_closed=0 valid_ok=240 valid_failed=0 causes=- not_closed_by=-
"""
import argparse
import collections
import os
import random
import selectors
import socket
import ssl
import time


def client_hello(sni):
    """The bytes of a real ClientHello for SNI (Python's own TLS client)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


KINDS = ["random", "truncated", "oversized", "hello+garbage", "http"]


def garbage(kind, hello):
    if kind == "random":
        return os.urandom(random.randint(1, 4096))
    if kind == "truncated":
        return hello[: random.randint(1, len(hello) - 1)]
    if kind == "oversized":
        return b"\x16\x03\x01\xff\xff" + os.urandom(random.randint(0, 2000))
    if kind == "hello+garbage":
        return hello + os.urandom(random.randint(1, 2000))
    return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Soak:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.waiting = {}  # socket -> (deadline, what it was)
        self.count = collections.Counter()
        self.causes = collections.Counter()
        self.stuck = collections.Counter()  # not closed: vip/kind/ending
        self.hello = client_hello(args.sni)
        self.ctx = ssl.create_default_context(cafile=args.ca)

    def open_garbage(self):
        vip = random.choice(["term", "route"])
        kind = random.choice(KINDS)
        try:
            s = socket.create_connection(addr(getattr(self.args, vip)), timeout=2)
            s.sendall(garbage(kind, self.hello))
        except OSError:
            # The proxy may have closed first: that is its right.
            self.count["garbage"] += 1
            self.count["closed"] += 1
            return
        self.count["garbage"] += 1
        ending = random.choice(["close", "half-close", "silent"])
        if vip == "route" and kind == "hello+garbage" and ending == "silent":
            # Routed on its hello: the rest is the server's to judge, and
            # nginx waits a minute for a record's missing bytes.
            ending = "half-close"
        try:
            if ending == "half-close":
                s.shutdown(socket.SHUT_WR)
        except OSError:  # already reset by the proxy
            ending = "close"
        if ending == "close":
            s.close()
            self.count["closed"] += 1
            return
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ)
        self.waiting[s] = (time.monotonic() + self.args.close_within, "%s/%s/%s" % (vip, kind, ending))

    def drain_waiting(self, timeout):
        for key, _ in self.sel.select(timeout):
            if self.closed(key.fileobj):
                self.done(key.fileobj, "closed")
        now = time.monotonic()
        for s, (deadline, what) in list(self.waiting.items()):
            if now > deadline:
                # Read once more: a blocking valid request may have kept
                # this loop from seeing the close in time.
                if self.closed(s):
                    self.done(s, "closed")
                else:
                    self.done(s, "not_closed")
                    self.stuck[what] += 1

    @staticmethod
    def closed(s):
        """True once the proxy closed S (an alert may come first)."""
        try:
            while True:
                if not s.recv(65536):
                    return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def done(self, s, what):
        self.sel.unregister(s)
        del self.waiting[s]
        s.close()
        self.count[what] += 1

    def valid(self, target, sni, expect):
        try:
            with socket.create_connection(addr(target), timeout=5) as raw:
                with self.ctx.wrap_socket(raw, server_hostname=sni) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                              % sni.encode())
                    body = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        body += chunk
            if b" 200 " not in body.split(b"\r\n", 1)[0] or expect not in body:
                raise ValueError("unexpected answer")
            self.count["valid_ok"] += 1
        except (OSError, ValueError) as e:
            self.count["valid_failed"] += 1
            self.causes[type(e).__name__] += 1

    def run(self):
        n = 0
        while not os.path.exists(self.args.stop):
            if len(self.waiting) < self.args.concurrent:
                self.open_garbage()
                n += 1
            if n % 10 == 0:
                self.valid(self.args.term, self.args.sni, b"fe")
                self.valid(self.args.route, self.args.sni, b"tls1")
                n += 1
            self.drain_waiting(self.args.pause)
        deadline = time.monotonic() + self.args.close_within + 1
        while self.waiting and time.monotonic() < deadline:
            self.drain_waiting(0.1)
        self.drain_waiting(0)
        c = self.count
        causes = ",".join("%s:%d" % kv for kv in self.causes.items()) or "-"
        stuck = ",".join("%s:%d" % kv for kv in self.stuck.items()) or "-"
        print("garbage=%d closed=%d not_closed=%d valid_ok=%d valid_failed=%d causes=%s "
              "not_closed_by=%s" % (c["garbage"], c["closed"], c["not_closed"], c["valid_ok"],
                                    c["valid_failed"], causes, stuck), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--term", required=True, help="ADDR:PORT of the tls = terminate VIP")
    p.add_argument("--route", required=True, help="ADDR:PORT of the tls = route VIP")
    p.add_argument("--sni", required=True, help="name both VIPs serve (and verify)")
    p.add_argument("--ca", required=True, help="CA file that signed both certificates")
    p.add_argument("--stop", required=True, help="stop once this file exists")
    p.add_argument("--close-within", type=float, default=6.0)
    p.add_argument("--concurrent", type=int, default=20)
    p.add_argument("--pause", type=float, default=0.01)
    Soak(p.parse_args()).run()


if __name__ == "__main__":
    main()
