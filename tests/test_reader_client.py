"""conftest's RawClient reads responses with labserver.protocol's ResponseReader:
checked here against a real server, with what each exchange must give."""

import pytest


def request(*lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


HELLO, OTHER = b"hello, world\n", b"the other file\n"
EXCHANGES = {  # request bytes, HEAD?, [(status, body)], closed by the server after it
    "get": (request("GET /hello.txt HTTP/1.1", "Host: x"), False, [(200, HELLO)], False),
    "head": (request("HEAD /hello.txt HTTP/1.1", "Host: x"), True, [(200, b"")], False),
    "missing": (request("GET /nope.txt HTTP/1.1", "Host: x"), False, [(404, None)], False),
    "range": (request("GET /hello.txt HTTP/1.1", "Host: x", "Range: bytes=0-4"), False, [(206, b"hello")], False),
    "not modified": (request("GET /hello.txt HTTP/1.1", "Host: x", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"),
                     False, [(304, b"")], False),
    "bad request": (request("GET /a b HTTP/1.1", "Host: x"), False, [(400, None)], True),
    "pipelined": (request("GET /hello.txt HTTP/1.1", "Host: x") + request("HEAD /other.txt HTTP/1.1", "Host: x")
                  + request("GET /other.txt HTTP/1.1", "Host: x", "Connection: close"), None,
                  [(200, HELLO), (200, b""), (200, OTHER)], True),
}


@pytest.mark.parametrize("exchange", EXCHANGES.values(), ids=EXCHANGES.keys())
def test_each_response_is_read_whole_and_in_order(server, connect, exchange):
    data, head, expected, closed = exchange
    client = connect(server.port)
    client.send(data)
    if head is None:  # pipelined: GET, HEAD, GET
        responses = [client.response(), client.response(head=True), client.response()]
    else:
        responses = [client.response(head=head)]
    assert [r.status for r in responses] == [status for status, _ in expected]
    for response, (_, body) in zip(responses, expected):
        if body is not None:
            assert response.body == body
        if response.body:  # framed by its length, which the reader checked against the bytes
            assert int(response.header("content-length")) == len(response.body)
    if head:
        assert int(responses[0].header("content-length")) == len(HELLO)  # HEAD: the length of the GET's body
    assert client.closed_by_server(0.5) is closed
