#!/usr/bin/python3
"""The seed experiment's endpoint in Tornado, for comparison with
examples/seed-endpoint: each request fetches the upstream URL and returns
its body.

  seed_endpoint.py --mode async|sync|sync-coroutine --upstream URL --port N

async           AsyncHTTPClient in a coroutine handler
sync            a blocking client (urllib) in a plain handler: blocks the IOLoop
sync-coroutine  the same blocking client inside a coroutine handler: still blocks
"""
import argparse
import urllib.request

import tornado.httpclient
import tornado.ioloop
import tornado.web

UPSTREAM = None


def blocking_get(url):
    with urllib.request.urlopen(url) as r:
        return r.read()


class Async(tornado.web.RequestHandler):
    async def get(self):
        r = await tornado.httpclient.AsyncHTTPClient().fetch(UPSTREAM)
        self.write(r.body)


class Sync(tornado.web.RequestHandler):
    def get(self):
        self.write(blocking_get(UPSTREAM))


class SyncCoroutine(tornado.web.RequestHandler):
    async def get(self):
        self.write(blocking_get(UPSTREAM))


def main():
    global UPSTREAM
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True,
                   choices=["async", "sync", "sync-coroutine"])
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    UPSTREAM = a.upstream
    # As many upstream connections as requests in flight, like the C side
    # (Tornado's default max_clients of 10 would queue).
    tornado.httpclient.AsyncHTTPClient.configure(None, max_clients=1024)
    handler = {"async": Async, "sync": Sync,
               "sync-coroutine": SyncCoroutine}[a.mode]
    app = tornado.web.Application([(r"/", handler)])
    app.listen(a.port, address="127.0.0.1")
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
