"""parse_request_line, HeadReader, split_responses (lesson 09)."""

import re

from . import right, wrong

LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")


@right("09", "parse_request_line")
def with_a_regex(line):
    match = LINE.fullmatch(line)
    if match is None:
        raise ValueError(f"malformed request line {line!r}")
    method, target, major, minor = match.groups()
    return method.decode("ascii"), target.decode("latin-1"), (int(major), int(minor))


@wrong("09", "parse_request_line", "decode the target with latin-1")
def decodes_utf8(line):
    method, target, version = with_a_regex(line)
    return method, target.encode("latin-1").decode("utf-8", "replace"), version


@wrong("09", "parse_request_line", "raised ValueError, but the line is valid")
def ascii_targets_only(line):
    if max(line, default=0) > 0x7f:
        raise ValueError("not ASCII")
    return with_a_regex(line)


@wrong("09", "parse_request_line", "should raise ValueError: two spaces")
def splits_on_any_whitespace(line):
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/") or len(parts[2]) != 8:
        raise ValueError(line)
    return parts[0].decode("latin-1"), parts[1].decode("latin-1"), (int(parts[2][5:6]), int(parts[2][7:8]))


class HeadReaderWithAList:
    def __init__(self):
        self.pending = bytearray()

    def feed(self, data):
        self.pending += data
        end = self.pending.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.pending[:end + 4])
        del self.pending[:end + 4]
        return head


right("09", "head_reader")(HeadReaderWithAList)


class SharedBuffer:
    buffer = b""  # a class attribute: every reader shares it

    def feed(self, data):
        SharedBuffer.buffer += data
        end = SharedBuffer.buffer.find(b"\r\n\r\n")
        if end == -1:
            return None
        head, SharedBuffer.buffer = SharedBuffer.buffer[:end + 4], SharedBuffer.buffer[end + 4:]
        return head


wrong("09", "head_reader", "must not share their buffer")(SharedBuffer)


class ForgetsTheRest:
    def __init__(self):
        self.buffer = b""

    def feed(self, data):
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end == -1:
            return None
        head, self.buffer = self.buffer[:end + 4], b""
        return head


wrong("09", "head_reader", "should return the second head")(ForgetsTheRest)


def _split(data, require_length=False, search_text=False, missing_means_zero=False, trust_length=False):
    responses = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError("incomplete head")
        head = data[:end].decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if search_text:
            found = re.search(r"Content-Length: *(\d+)", head)
        else:
            found = re.search(r"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$", head)
        if (status < 200 or status in (204, 304)) and not trust_length:
            length = 0  # RFC 9112 6.3: no body, whatever the fields say
        elif found is None and require_length:
            raise ValueError("no Content-Length")
        elif found is None:
            length = 0 if missing_means_zero else len(data) - end - 4  # until the server closed
        else:
            length = int(found.group(1))
        if len(data) < end + 4 + length:
            raise ValueError("incomplete body")
        responses.append((status, data[end + 4:end + 4 + length]))
        data = data[end + 4 + length:]
    return responses


@right("09", "split_responses")
def with_a_regex_per_head(data):
    return _split(data)


@wrong("09", "split_responses", "its body runs until the server closed: split_responses raised ValueError")
def requires_content_length(data):
    return _split(data, require_length=True)


@wrong("09", "split_responses", "runs until the server closes the connection")
def no_length_means_zero(data):  # what lesson 09 itself taught before RFC 9112 6.3 was read
    return _split(data, missing_means_zero=True)


@wrong("09", "split_responses", "a 304 never has a body|whatever its Content-Length says")
def trusts_the_length_of_a_304(data):
    return _split(data, trust_length=True)


@wrong("09", "split_responses", "look at each header's name|case-insensitive")
def searches_the_text(data):
    return _split(data, search_text=True)


@wrong("09", "split_responses", "did not return within", hangs=True)
def never_advances(data):
    responses = []
    while data:
        data.find(b"\r\n\r\n")
    return responses
