#!/usr/bin/env python3
"""haclient: the client side of the HA lab (tests/lab/ha.sh).

  haclient.py VIP PORT OUT [--open N] [--interval S] [--duration S]
              [--event FILE] [--timeout S]
  haclient.py --report OUT

Holds N open HTTP/1.1 keep-alive connections to VIP:PORT and, meanwhile,
opens a new connection every --interval seconds for --duration seconds. The
servers (nginx) answer each request with the address the request came from:
the SNAT address of the node that carried it, so each answer names its node.
Once the loop is done, every open connection sends one more request: an
answer means it survived, anything else that it broke.

While running it writes OUT.ready once the open connections are up, so the
caller knows when to act; the caller writes the time of its action (Unix
seconds) to --event FILE. OUT gets one JSON object: the attempts (start
time, ok, node), the open connections (node, alive) and the event time.
"""
import asyncio
import json
import os
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"
REQ_CLOSE = b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"


async def request(reader, writer, req, timeout):
    """One request on an open connection; returns the node it names."""
    writer.write(req)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return body.decode().strip()


async def attempt(vip, port, timeout, out):
    start = time.time()
    rec = {"t": start, "ok": False, "node": None}
    out.append(rec)
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), timeout)
        rec["node"] = await request(reader, writer, REQ_CLOSE, timeout)
        rec["ok"] = True
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
        rec["err"] = type(e).__name__
    finally:
        if writer:
            writer.close()
    rec["ms"] = round((time.time() - start) * 1000, 1)


async def main():
    args = sys.argv[1:]
    vip, port, out = args[0], int(args[1]), args[2]
    opt = {"--open": "20", "--interval": "0.05", "--duration": "6", "--event": "",
           "--timeout": "1"}
    for i in range(3, len(args), 2):
        opt[args[i]] = args[i + 1]
    nopen, interval = int(opt["--open"]), float(opt["--interval"])
    duration, timeout = float(opt["--duration"]), float(opt["--timeout"])

    conns = []
    for _ in range(nopen):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(vip, port), timeout)
            conns.append({"rw": (r, w), "node": await request(r, w, REQ, timeout)})
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            conns.append({"rw": None, "node": None, "err": type(e).__name__})
    open(out + ".ready", "w").close()

    attempts, tasks = [], []
    t0 = time.time()
    n = 0
    while time.time() - t0 < duration:
        tasks.append(asyncio.ensure_future(attempt(vip, port, timeout, attempts)))
        n += 1
        await asyncio.sleep(max(0, t0 + n * interval - time.time()))
    await asyncio.gather(*tasks)

    result = []
    for c in conns:
        alive = False
        if c["rw"]:
            try:
                alive = await request(*c["rw"], REQ, timeout) == c["node"]
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                pass
            c["rw"][1].close()
        result.append({"node": c["node"], "alive": alive})
    event = None
    if opt["--event"] and os.path.exists(opt["--event"]):
        with open(opt["--event"]) as f:
            event = float(f.read().split()[0])
    with open(out, "w") as f:
        json.dump({"event": event, "attempts": sorted(attempts, key=lambda a: a["t"]),
                   "open": result}, f)


def report(path):
    """One line of key=value figures from a run's OUT, for the shell."""
    with open(path) as f:
        run = json.load(f)
    att, event = run["attempts"], run["event"] or 0
    ok = [a for a in att if a["ok"]]
    failed = [a for a in att if not a["ok"]]
    gap = max((b["t"] - a["t"] for a, b in zip(ok, ok[1:])), default=0)
    before = [a["node"] for a in ok if a["t"] < event]
    old = max(set(before), key=before.count) if before else None
    moved = next((a["t"] for a in ok if a["t"] >= event and a["node"] != old), None)
    recover = 0
    if failed:
        last = failed[-1]["t"]
        recover = next((a["t"] for a in ok if a["t"] > last), last) - event
    after = {}
    for a in ok:
        if a["t"] >= event:
            after[a["node"]] = after.get(a["node"], 0) + 1
    last = {}
    for a in ok:
        last[a["node"]] = a["t"] - event
    opened = {}
    for c in run["open"]:
        n = opened.setdefault(c["node"], [0, 0])
        n[0] += 1
        n[1] += 0 if c["alive"] else 1
    # Each failed attempt: its start in ms after the event, its error, how
    # long it took.
    fails = ",".join("%d:%s:%d" % ((a["t"] - event) * 1000, a.get("err", "-"), a["ms"])
                     for a in failed) or "-"
    print("attempts=%d failed=%d gap_ms=%d recover_ms=%d moved_ms=%s old=%s after=%s last=%s open=%s "
          "fails=%s" % (
        len(att), len(failed), gap * 1000, max(recover, 0) * 1000,
        "%d" % ((moved - event) * 1000) if moved else "-", old,
        ",".join("%s:%d" % kv for kv in sorted(after.items())) or "-",
        ",".join("%s:%d" % (k, v * 1000) for k, v in sorted(last.items())),
        ",".join("%s:%d:%d" % (k, v[0], v[1]) for k, v in sorted(opened.items(), key=str)),
        fails))


if sys.argv[1] == "--report":
    report(sys.argv[2])
else:
    asyncio.run(main())
