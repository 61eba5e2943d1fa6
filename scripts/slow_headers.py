#!/usr/bin/env python3
"""Slow-header attack against a local odg, loopback only, bounded in connections and time.

Opens --connections connections to --url's host and port; each sends a request line and then
one more header line every --interval seconds, never the blank line that ends the head. Reports
how many the server closed and when, refused connects, and the server's resident memory
(VmRSS of --pid) before, at its peak and at the end. Used for the HTTP-layer figures in
BENCHMARKS.md:

    odg serve --listen 127.0.0.1:5900 --cache-dir /tmp/odg-attack &
    python3 scripts/slow_headers.py --url http://127.0.0.1:5900 --pid $! --connections 2000
"""

import argparse
import asyncio
import time
import urllib.parse


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def attacker(host, port, interval, duration, started, outcomes):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        outcomes.append(("refused", time.monotonic() - started))
        return
    writer.write(b"GET /live HTTP/1.1\r\nhost: odg\r\n")
    line = 0
    try:
        while time.monotonic() - started < duration:
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=interval)
                # Bytes (an answer) or EOF: either way the server ended the slow head.
                outcomes.append(("closed", time.monotonic() - started, bool(data)))
                return
            except asyncio.TimeoutError:
                pass
            writer.write(f"x-slow-{line}: still coming\r\n".encode())
            line += 1
            await writer.drain()
    except (ConnectionError, OSError):
        outcomes.append(("closed", time.monotonic() - started, False))
        return
    finally:
        writer.close()
    outcomes.append(("open", time.monotonic() - started))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--pid", type=int, required=True, help="the odg process, for VmRSS")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=45.0)
    args = parser.parse_args()
    parsed = urllib.parse.urlparse(args.url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    connections = min(args.connections, 5000)
    duration = min(args.duration, 120.0)

    before = rss_kib(args.pid)
    peak = before
    started = time.monotonic()
    outcomes = []
    tasks = [
        asyncio.create_task(
            attacker(parsed.hostname, parsed.port, args.interval, duration, started, outcomes)
        )
        for _ in range(connections)
    ]
    while not all(task.done() for task in tasks):
        peak = max(peak, rss_kib(args.pid))
        await asyncio.sleep(0.5)
    after = rss_kib(args.pid)

    closed = sorted(outcome[1] for outcome in outcomes if outcome[0] == "closed")
    answered = sum(1 for outcome in outcomes if outcome[0] == "closed" and outcome[2])
    still_open = sum(1 for outcome in outcomes if outcome[0] == "open")
    refused = sum(1 for outcome in outcomes if outcome[0] == "refused")
    print(f"connections {connections}, one header line every {args.interval:g} s, for {duration:g} s")
    print(f"closed by the server: {len(closed)} (with an answer: {answered}); still open at the end: {still_open}; refused: {refused}")
    if closed:
        print(
            f"closed after: first {closed[0]:.1f} s, median {closed[len(closed) // 2]:.1f} s, last {closed[-1]:.1f} s"
        )
    print(
        f"server VmRSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (+{(peak - before) / 1024:.1f}), end {after / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    asyncio.run(main())
