# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A stand-in for dockerd's API socket (tests/action/run.sh).

No dockerd runs on the test machines, so this answers the Docker Engine
API's version handshake as dockerd does: GET/HEAD /_ping ("OK", with the
Api-Version header the docker CLI negotiates with) and GET /vX/version, on
a unix socket, mode 0666 (a runner's user is in the docker group). Every
request is a line of LOG (method, path, the peer's uid), so a test can say
that nothing arrived. It stops by itself after SECONDS.

    python3 dockerd-standin.py SOCKET LOG SECONDS
"""
import json
import os
import socket
import socketserver
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler

API = "1.47"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weir-dockerd-standin"

    def log_message(self, fmt, *args):  # the LOG line is ours
        pass

    def peer_uid(self):
        cred = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                       struct.calcsize("3i"))
        return struct.unpack("3i", cred)[2]

    def reply(self, code, body, ctype):
        with open(self.server.log, "a") as f:
            f.write(f"{self.command} {self.path} uid={self.peer_uid()}\n")
        self.send_response(code)
        self.send_header("Api-Version", API)
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def answer(self):
        path = self.path.split("?")[0]
        if path == "/_ping" or path.endswith("/_ping"):
            return self.reply(200, b"OK", "text/plain; charset=utf-8")
        if path == "/version" or path.endswith("/version"):
            body = json.dumps({"Version": "stand-in", "ApiVersion": API,
                               "MinAPIVersion": "1.24", "Os": "linux",
                               "Arch": "amd64"}).encode()
            return self.reply(200, body, "application/json")
        body = json.dumps({"message": "not in the stand-in"}).encode()
        return self.reply(404, body, "application/json")

    do_GET = answer
    do_HEAD = answer


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    path, log, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if os.path.exists(path):
        os.unlink(path)
    srv = Server(path, Handler)
    srv.log = log
    os.chmod(path, 0o666)
    srv.timeout = 0.2
    end = time.monotonic() + seconds
    print("ready", flush=True)
    while time.monotonic() < end:
        srv.handle_request()
    os.unlink(path)


if __name__ == "__main__":
    main()
