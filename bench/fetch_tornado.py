#!/usr/bin/env python3
"""The peer of bench/fetch's queue case: N fetches started at once against
one URL through Tornado's AsyncHTTPClient with max_clients=CAP, so all but
CAP wait in its queue. Prints bench.h's R lines.

    bench/fetch_tornado.py URL N CAP
"""
import resource
import sys
import time

from tornado import gen, httpclient, ioloop


async def main(url, n, cap):
    httpclient.AsyncHTTPClient.configure(None, max_clients=cap)
    client = httpclient.AsyncHTTPClient()
    failed = 0

    async def one():
        nonlocal failed
        try:
            r = await client.fetch(url, request_timeout=600,
                                   connect_timeout=600)
            if r.code != 200:
                failed += 1
        except Exception:
            failed += 1

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await gen.multi([one() for _ in range(n)])
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(f"R fetch tornado req_per_s {n / wall:.0f}")
    print(f"R fetch tornado cpu_ns_per_req {cpu * 1e9 / n:.0f}")
    print(f"I fetch tornado failed {failed}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ioloop.IOLoop.current().run_sync(
        lambda: main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
