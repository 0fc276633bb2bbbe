#!/usr/bin/env python3
"""crowd: a hostile but ordinary crowd of clients, and a probe of service.

    crowd.py --slow HOST:PORT --get PATH --readers N --rate BYTES_PER_S
             --idle HOST:PORT --idlers N --probe HOST:PORT --probes N
             [--settle S] [--stall-after S] [--snapshot URL]

Opens N slow readers (each asks an HTTP server behind the proxy for PATH
and reads at most --rate bytes a second) and N idle connections, waits --settle
seconds for the readers to fill what they can, then sends --probes fresh
small requests to an echo VIP one after another and times each (connect to
last byte back). Prints one JSON object: the probes' p50, p99 and max in ms
and how many failed, and how many bytes the slowest and the fastest reader
received. With --stall-after, the readers stop reading S seconds after
they start (and keep their connections open): what the proxy holds for
them then stays held. --snapshot fetches URL (the proxy's /stats) once
the crowd has settled, before the probes, and adds its JSON to the output
as "snapshot". Exit status 0; the calling test judges the figures.
"""
import argparse
import asyncio
import json
import time
import urllib.request

PROBE_TIMEOUT = 2.0


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


async def slow_reader(addr, path, rate, got, i, stop, stall):
    try:
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"GET %s HTTP/1.0\r\nHost: crowd\r\n\r\n" % path.encode())
    except OSError:
        return
    tick = 0.1
    t0 = time.monotonic()
    try:
        while not stop.is_set():
            if stall and time.monotonic() - t0 >= stall:
                await stop.wait()
                break
            data = await asyncio.wait_for(reader.read(int(rate * tick)), 5)
            if not data:
                break
            got[i] += len(data)
            await asyncio.sleep(tick)
    except (OSError, asyncio.TimeoutError):
        pass
    writer.close()


async def idle(addr, conns):
    try:
        conns.append(await asyncio.open_connection(*addr))
    except OSError:
        pass


async def probe(addr):
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), PROBE_TIMEOUT)
        writer.write(b"abc")
        await writer.drain()
        data = await asyncio.wait_for(reader.readexactly(3), PROBE_TIMEOUT)
        writer.close()
        if data != b"abc":
            return None
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return None
    return (time.monotonic() - t0) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else None


async def main(a):
    stop = asyncio.Event()
    got = [0] * a.readers
    idlers = []
    for k in range(0, a.idlers, 500):
        await asyncio.gather(*(idle(hostport(a.idle), idlers) for _ in range(min(500, a.idlers - k))))
    readers = [asyncio.ensure_future(slow_reader(hostport(a.slow), a.get, a.rate, got, i, stop,
                                               a.stall_after))
               for i in range(a.readers)]
    await asyncio.sleep(a.settle)
    snapshot = None
    if a.snapshot:
        with urllib.request.urlopen(a.snapshot, timeout=5) as resp:
            snapshot = json.load(resp)
    times, failed = [], 0
    for _ in range(a.probes):
        t = await probe(hostport(a.probe))
        if t is None:
            failed += 1
        else:
            times.append(t)
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.gather(*readers, return_exceptions=True)
    for _, w in idlers:
        w.close()
    print(json.dumps({
        "idle_open": len(idlers), "probes_ok": len(times), "probes_failed": failed,
        "p50_ms": round(pct(times, 50) or -1, 2), "p99_ms": round(pct(times, 99) or -1, 2),
        "max_ms": round(max(times) if times else -1, 2),
        "reader_min_bytes": min(got) if got else 0, "reader_max_bytes": max(got) if got else 0,
        "readers_without_bytes": sum(1 for g in got if g == 0),
        "snapshot": snapshot,
    }))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--slow", required=True)
    p.add_argument("--get", default="/big")
    p.add_argument("--readers", type=int, default=200)
    p.add_argument("--rate", type=int, default=16000)
    p.add_argument("--idle", required=True)
    p.add_argument("--idlers", type=int, default=4000)
    p.add_argument("--probe", required=True)
    p.add_argument("--probes", type=int, default=50)
    p.add_argument("--settle", type=float, default=3)
    p.add_argument("--stall-after", type=float, default=0)
    p.add_argument("--snapshot")
    asyncio.run(main(p.parse_args()))
