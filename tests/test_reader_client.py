"""The ResponseReader on real sockets, behind conftest's RawClient interface.

ReaderClient below is what conftest.RawClient should become (the tests call
`client.response()`, `client.response(head=True)`, `client.closed_by_server()`
and `response.header(name)`): the same interface, with the framing read by
labserver.protocol's ResponseReader instead of a parser of its own. Every
exchange here runs through both, against a real server, and must read alike.
"""

import socket
import time

import pytest

from labserver.protocol import ReceivedResponse, ResponseReader


class CheckedResponse(ReceivedResponse):
    def header(self, name, default=None):
        """The value of a header that must appear at most once, or None (as RawResponse.header)."""
        values = [value for key, value in self.headers if key == name.lower()]
        assert len(values) <= 1, f"{name} appears {len(values)} times"
        return values[0] if values else default


class ReaderClient:
    """One TCP connection: send any bytes, read back exactly one response at a time."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.reader = ResponseReader()

    def send(self, data):
        self.sock.sendall(data)

    def response(self, head=False):
        """The next response; `head=True` for the answer to HEAD (no body)."""
        self.reader.expect("HEAD" if head else "GET")
        while (response := self.reader.next_response()) is None:
            if self.reader.closed:
                raise EOFError("server closed the connection")
            self.reader.feed(self.sock.recv(1 << 16))
        # Our servers frame every body by its length: a body that ends at the close would be a bug.
        assert response.framing in ("length", "none"), f"a body framed by {response.framing!r}"
        return CheckedResponse(**vars(response))

    def closed_by_server(self, timeout=5.0):
        """True if the server closes (EOF or reset) within `timeout` without sending
        anything more; False if the connection is still open then."""
        assert not self.reader.has_partial_response, "unexpected extra bytes"
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                data = self.sock.recv(1 << 16)
                assert not data, f"unexpected extra bytes {data[:200]!r}"
                return True
            return False
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        self.sock.close()


def request(*lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def seen(response):
    """What a test looks at, without the Date (it may tick between the two reads)."""
    return response.status, response.reason, [h for h in response.headers if h[0] != "date"], response.body


EXCHANGES = {
    "get": [(request("GET /hello.txt HTTP/1.1", "Host: x"), False)],
    "head": [(request("HEAD /hello.txt HTTP/1.1", "Host: x"), True)],
    "missing": [(request("GET /nope.txt HTTP/1.1", "Host: x"), False)],
    "range": [(request("GET /hello.txt HTTP/1.1", "Host: x", "Range: bytes=0-4"), False)],
    "not modified": [(request("GET /hello.txt HTTP/1.1", "Host: x", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"),
                      False)],
    "bad request": [(request("GET /a b HTTP/1.1", "Host: x"), False)],
    "pipelined": [(request("GET /hello.txt HTTP/1.1", "Host: x") + request("HEAD /other.txt HTTP/1.1", "Host: x")
                   + request("GET /other.txt HTTP/1.1", "Host: x", "Connection: close"), None)],
}


@pytest.mark.parametrize("exchange", EXCHANGES.values(), ids=EXCHANGES.keys())
def test_reads_as_raw_client_does(server, connect, exchange):
    results = []
    for make in (connect, lambda port: ReaderClient(port)):
        client = make(server.port)
        responses = []
        for data, head in exchange:
            client.send(data)
            if head is None:  # pipelined: GET, HEAD, GET
                responses += [client.response(), client.response(head=True), client.response()]
            else:
                responses.append(client.response(head=head))
        results.append(([seen(r) for r in responses], client.closed_by_server(0.5),
                         [r.header("content-length") for r in responses]))
        if isinstance(client, ReaderClient):
            client.close()
    assert results[0] == results[1]
    assert results[0][0]  # something was read
