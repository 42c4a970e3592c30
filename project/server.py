"""Your project: a multithreaded HTTP/1.1 server (version 2).

This is version 1, the starting point: it is correct for one well-behaved
client at a time and nothing more. Grade it, then improve it until

    python -m labserver grade --cmd "python project/server.py --port {port} --root {root}" --source project/server.py

gives full marks (lesson 10 explains each row of the table).

The rule, which the grader checks (a server that breaks it gets zero points,
with the reason): your own code on the standard library only (socket,
threading, queue, selectors, os...). Not labserver, whose servers are the
model answer; not a ready-made server (http.server, socketserver, wsgiref);
nothing that loads code or starts programs the grader cannot read
(importlib, exec, subprocess).

    python project/server.py --port 8000 --root labserver/demo_site
"""

import argparse
import os
import socket

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript",
         ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon", ".txt": "text/plain"}


def handle(sock, root):
    """Answer one request on `sock`, then close it. (No keep-alive, no checks: improve me.)"""
    request = sock.recv(65536).decode("latin-1")  # assumes the whole request came in one recv()
    method, path, _ = request.split("\r\n")[0].split(" ")
    file = os.path.join(root, path.lstrip("/") or "index.html")  # unsafe: ../ escapes the root
    try:
        with open(file, "rb") as f:
            body = f.read()  # a 1 GB file would be read into memory whole
        head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: {TYPES.get(os.path.splitext(file)[1], 'application/octet-stream')}\r\n"
                "Connection: close\r\n\r\n")
    except OSError:
        body = b"not found\n"
        head = f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    sock.sendall(head.encode() + (b"" if method == "HEAD" else body))
    sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--root", default=".")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    print(f"serving {args.root} on http://127.0.0.1:{args.port}/", flush=True)
    try:
        while True:
            sock, _ = listener.accept()  # one client at a time: everyone else waits
            try:
                handle(sock, args.root)
            except Exception:
                sock.close()  # a bad request must not stop the server
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main()
