"""The HTTP/1.1 core, with no I/O: bytes in, requests out; responses in, bytes out.
And the client's side: response bytes in, responses out (reader.py).

No module in this package imports socket, threading or selectors (a test checks):
every server model in labserver.servers moves bytes between sockets and this core.
"""

from .connection import Connection, escape_for_log
from .reader import IncompleteResponse, ReceivedResponse, ResponseError, ResponseReader
from .request import KNOWN_METHODS, HTTPError, Request, RequestParser
from .response import Delay, FileBody, Response, error_response, http_date, serialize_head

__all__ = [
    "Connection", "escape_for_log", "KNOWN_METHODS", "HTTPError", "Request", "RequestParser",
    "Delay", "FileBody", "Response", "error_response", "http_date", "serialize_head",
    "IncompleteResponse", "ReceivedResponse", "ResponseError", "ResponseReader",
]
