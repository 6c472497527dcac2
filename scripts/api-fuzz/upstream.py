"""A minimal upstream site for scripts/api-fuzz.sh, on 127.0.0.1 only.

`POST /login` with the form fields `username=fuzz&password=fuzz` answers 200 and sets the
cookie SESSID; every other request answers 200 with a small JSON body (nothing for HEAD), so
that the `/v1/upstreams/{name}/…` operations of Tessera have a pool to lend and forward
through. It never answers a status Tessera also uses for its own errors, so that what the
fuzzer sees from `…/proxy/…` other than 200 is Tessera's.

Prints `upstream listening on http://127.0.0.1:PORT` once it serves; stops on SIGTERM.
"""

import secrets
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the fuzzer sends thousands
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self, status=200, body=b'{"ok":true}', extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _any(self):
        body = self._body()
        path = urllib.parse.urlsplit(self.path).path
        if self.command == "POST" and path == "/login":
            fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            if fields.get("username") == ["fuzz"] and fields.get("password") == ["fuzz"]:
                cookie = f"SESSID={secrets.token_urlsafe(16)}; Path=/; HttpOnly"
                return self._answer(200, b'{"welcome":true}', [("Set-Cookie", cookie)])
            # A refused login: no cookie (Tessera then answers UPSTREAM_LOGIN_FAILED).
            return self._answer(200, b'{"welcome":false}')
        return self._answer()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"upstream listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
