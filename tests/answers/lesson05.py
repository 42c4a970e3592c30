"""The upper-case echo as a generator task and as an asyncio coroutine (lesson 05)."""

import time

from . import right, wrong


@right("05", "upper_echo_task")
def task_with_a_memoryview(sock):
    while True:
        yield ("recv", sock)
        data = sock.recv(65536)
        if data == b"":
            sock.close()
            return
        pending = memoryview(data.upper())
        while len(pending):
            yield ("send", sock)
            pending = pending[sock.send(pending):]


def _task(sock, send_once=False, close=True):
    while True:
        yield "recv", sock
        data = sock.recv(65536)
        if not data:
            break
        data = data.upper()
        while data:
            yield "send", sock
            if send_once == "sendall":
                sock.sendall(data)
                break
            sent = sock.send(data)
            data = b"" if send_once else data[sent:]
    if close:
        sock.close()


@wrong("05", "upper_echo_task", "Lost bytes\\? send\\(\\) may take only part")
def sends_once(sock):
    return _task(sock, send_once=True)  # ignores what send() returns


@wrong("05", "upper_echo_task", "raised BlockingIOError")
def sendall_on_a_full_buffer(sock):
    return _task(sock, send_once="sendall")


@wrong("05", "upper_echo_task", "kept the connection open")
def never_closes(sock):
    return _task(sock, close=False)


@wrong("05", "upper_echo_task", "not a generator")
def not_a_generator(sock):
    return sock  # forgot every yield


@right("05", "upper_echo_async")
async def async_with_read_of_any_size(reader, writer):
    while True:
        data = await reader.read(1 << 20)
        if not data:
            break
        writer.write(data.upper())
        await writer.drain()
    writer.close()


@wrong("05", "upper_echo_async", "pile up in the writer's buffer")
async def no_drain(reader, writer):
    while data := await reader.read(65536):
        writer.write(data.upper())
    writer.close()
    await writer.wait_closed()


@wrong("05", "upper_echo_async", "blocking the event loop, at .*time.sleep")
async def blocks_the_loop(reader, writer):
    time.sleep(4)  # longer than the check waits for an answer
    while data := await reader.read(65536):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


@wrong("05", "upper_echo_async", "kept the connection open")
async def never_closes_the_writer(reader, writer):
    while data := await reader.read(65536):
        writer.write(data.upper())
        await writer.drain()


@wrong("05", "upper_echo_async", "should be a coroutine function")
def not_async(reader, writer):
    pass
