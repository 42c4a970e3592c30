"""Lesson 09 (HTTP by hand): one HTTP/1.1 connection as a state machine, no I/O.

A server model owns the socket; this object owns the rules. The model feeds it
whatever recv() returned and asks for the next response to send; this object
parses, calls the application, and decides the framing: Content-Length, HEAD
without a body, keep-alive (HTTP/1.1 keeps the connection open by default,
HTTP/1.0 closes it), and when the connection must close.

    conn = Connection(app)
    conn.feed(sock.recv(65536))          # b"" means the peer closed
    while (chunks := conn.next_response()) is not None:
        send(sock, chunks)               # bytes, a FileBody to stream, or a Delay
    if conn.closing: sock.close()

Responses come out one request at a time, in request order, so a model that
cannot send yet (a slow reader, a pipelined burst) simply stops asking.

Trade-off: the application runs inside next_response(), on whatever thread,
process or event loop calls it. Which one that is, is the whole lecture.
"""

import logging

from .request import HTTPError, RequestParser
from .response import SERVER_NAME, Delay, error_response, http_date, serialize_head

access_log = logging.getLogger("labserver.access")
error_log = logging.getLogger("labserver.error")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
JOIN_LIMIT = 64 * 1024  # bodies up to this size are sent in one piece with the head
NO_BODY_STATUSES = (204, 304)

# Control characters in a logged request line could forge log lines or
# terminal escapes; write them as \xNN instead.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES[ord("\\")] = "\\\\"
_ESCAPES[ord('"')] = '\\"'


def escape_for_log(text):
    return text.translate(_ESCAPES)


class Connection:
    def __init__(self, app, peer="-"):
        self.app = app
        self.peer = peer
        self.parser = RequestParser()
        self.closing = False  # no more responses: close once the last one is sent
        self._peer_closed = False
        self._continue_sent = False

    def feed(self, data):
        """Bytes from recv(); b"" means the client will send no more."""
        if data:
            self.parser.feed(data)
        else:
            self._peer_closed = True

    def next_response(self):
        """The chunks answering the next complete request, or None.

        None means: wait for more bytes, or, if `closing` is now true, that
        nothing more will be sent and the socket can be closed.
        """
        if self.closing:
            return None
        try:
            request = self.parser.next_request()
        except HTTPError as error:
            return self._frame(None, error_response(error.status, error.reason, close=error.close))
        if request is None:
            if self.parser.expects_continue and not self._continue_sent:
                # The client waits for our go-ahead before sending its body.
                self._continue_sent = True
                return [CONTINUE]
            if self._peer_closed:
                self.closing = True
            return None
        self._continue_sent = False
        try:
            response = self.app(request)
        except Exception:
            error_log.exception("application error on %s", escape_for_log(request.target))
            response = error_response(500, close=True)
        return self._frame(request, response)

    def timeout_response(self):
        """What to send a client that was too slow: 408 if it had started a
        request, nothing if it was idle between requests. Then close."""
        if self.closing or not self.parser.has_partial_request:
            self.closing = True
            return []
        return self._frame(None, error_response(408, close=True))

    def _frame(self, request, response):
        keep_alive = request is not None and request.keep_alive and not response.close
        status = response.status
        headers = [("Date", http_date()), ("Server", SERVER_NAME), *response.headers]
        if status not in NO_BODY_STATUSES:
            headers.append(("Content-Length", str(response.content_length)))
        if not keep_alive:
            headers.append(("Connection", "close"))
            self.closing = True
        elif request.version == (1, 0):
            headers.append(("Connection", "keep-alive"))
        head = serialize_head(status, headers)
        self._log(request, status, response.content_length)

        body_allowed = status not in NO_BODY_STATUSES and (request is None or request.method != "HEAD")
        chunks = [Delay(response.delay)] if response.delay > 0 else []
        if response.file is not None:
            if body_allowed:
                return [*chunks, head, response.file]
            response.file.close()
        elif body_allowed and len(response.body) <= JOIN_LIMIT:
            # One write per response: no Nagle stall, one system call.
            return [*chunks, head + response.body]
        elif body_allowed:
            return [*chunks, head, response.body]  # too big to copy just to join
        return [*chunks, head]

    def _log(self, request, status, length):
        if not access_log.isEnabledFor(logging.INFO):
            return
        line = "-"
        if request is not None:
            line = f"{request.method} {request.target} HTTP/{request.version[0]}.{request.version[1]}"
        access_log.info('%s "%s" %d %d', self.peer, escape_for_log(line), status, length)
