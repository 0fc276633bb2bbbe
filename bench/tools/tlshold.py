#!/usr/bin/env python3
"""tlshold: opens COUNT TLS connections to HOST:PORT (bench/tls's idle-memory
workload), sends one small HTTP/1.1 request on each and reads its answer, so
that every connection is known to reach a server, then prints
`ready ok=N fail=M` and holds them until SIGTERM. No certificate check: the
benchmark's CA is throwaway. Concurrency is bounded (--parallel)."""
import argparse
import asyncio
import signal
import ssl
import sys


async def one(args, ctx, sem, held):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port, ssl=ctx, server_hostname=args.sni),
                args.timeout)
            w.write(b"GET / HTTP/1.1\r\nHost: " + args.sni.encode() + b"\r\n\r\n")
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), args.timeout)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await asyncio.wait_for(r.readexactly(length), args.timeout)
            held.append(w)
            return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as e:
            print(f"tlshold: {args.host}:{args.port}: {e!r}", file=sys.stderr)
            return False


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--parallel", type=int, default=64)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--sni", default="bench.test")
    p.add_argument("dst", help="HOST:PORT")
    args = p.parse_args()
    args.host, port = args.dst.rsplit(":", 1)
    args.port = int(port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(args.parallel)
    held = []
    res = await asyncio.gather(*(one(args, ctx, sem, held) for _ in range(args.count)))
    ok = sum(res)
    print(f"ready ok={ok} fail={len(res) - ok}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for w in held:
        w.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
