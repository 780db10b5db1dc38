#!/usr/bin/python3
"""GET / -> "hello world\\n" in Tornado, one process (benchmark peer).

  hello.py PORT
"""
import sys

import tornado.ioloop
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("hello world\n")


if __name__ == "__main__":
    tornado.web.Application([(r"/", Hello)]).listen(
        int(sys.argv[1]), address="127.0.0.1")
    tornado.ioloop.IOLoop.current().start()
