"""Lesson 05 (coroutines and asyncio): the coroutine server, on asyncio.

    async def serve_client(self, reader, writer):  # one coroutine per connection
        ...
            while not conn.closing:
                ...
                conn.feed(await wait_for(reader.read(RECV_SIZE), timeout))  # waits for the client
                while (chunks := conn.next_response()) is not None:
                    out.extend(chunks)
                    await self.send(writer, out)  # waits until the client has taken it all

The generator server again, from the standard library: `await` where it had
`yield`, asyncio's event loop (in one background thread, see asyncio_loop.py)
where it had its own, and streams (reader, writer) where it called recv() and
send(). Each connection is one coroutine that reads like serve_blocking() in
blocking.py.

Two things asyncio leaves to us. Back-pressure: writer.write() never blocks,
it only buffers, so without `await writer.drain()` a 1 GiB file would pile up
in memory; files go out with loop.sendfile, a slice at a time. Timeouts:
wait_for() around every wait, or an idle client holds its socket forever.

asyncio's event loop is a selector loop (epoll, kqueue: readiness) on
Linux and macOS, and a ProactorEventLoop (IOCP: completion) on Windows since
Python 3.8; this coroutine is the same on both.

Trade-off: still one thread, so one /cpu or /block request stalls every
client (a blocking call belongs in loop.run_in_executor); in return, a loop
with timers, sendfile, TLS and subprocesses already written.
"""

import asyncio
from collections import deque

from ..protocol import Connection, Delay, FileBody
from .asyncio_loop import AsyncioLoopServer, wait_for
from .blocking import LINGER, RECV_SIZE, RecvDeadline, close_chunks, peer_name
from .nonblocking import SLICE


class AsyncioServer(AsyncioLoopServer):
    name = "asyncio"
    description = "asyncio streams: one coroutine per connection on asyncio's event loop"

    async def serve_client(self, reader, writer):
        """serve_blocking() in blocking.py, with an `await` where it would block."""
        conn = Connection(self.app, peer=peer_name(writer.get_extra_info("peername")))
        recv_deadline = RecvDeadline(self.timeouts)  # idle, or what is left of the request's time
        out = deque()  # the chunks of the response being sent
        try:
            while not conn.closing:
                timeout = recv_deadline.at(conn, self.loop.time()) - self.loop.time()
                conn.feed(await wait_for(reader.read(RECV_SIZE), timeout))  # waits for the client
                while (chunks := conn.next_response()) is not None:
                    out.extend(chunks)
                    await self.send(writer, out)  # waits until the client has taken it all
            writer.write_eof()  # linger (see blocking.linger): FIN, then read until the client closes too
            deadline = self.loop.time() + LINGER
            while await wait_for(reader.read(RECV_SIZE), deadline - self.loop.time()):
                pass
        except asyncio.TimeoutError:
            if reply := b"".join(conn.timeout_response()):
                writer.write(reply)  # a 408: a request was half-way in
        except OSError:
            pass  # the client went away
        finally:
            close_chunks(out)
            writer.close()  # once the bytes still buffered have gone out...
            self.loop.call_later(LINGER, writer.transport.abort)  # ...or LINGER s later if they cannot

    async def send(self, writer, out):
        while out:
            chunk = out[0]
            if isinstance(chunk, Delay):
                await asyncio.sleep(chunk.seconds)  # a timer: the loop serves others meanwhile
            elif isinstance(chunk, FileBody):
                while chunk.count:  # the kernel copies file to socket (or asyncio reads and writes)
                    sent = await wait_for(self.loop.sendfile(
                        writer.transport, chunk.file, chunk.offset, min(chunk.count, SLICE)), self.timeouts.send)
                    if not sent:
                        raise ConnectionError("file shrank while it was being sent")
                    chunk.advance(sent)
                chunk.close()
            else:
                view = memoryview(chunk)
                for start in range(0, len(view), SLICE):
                    writer.write(view[start:start + SLICE])  # only buffers
                    await wait_for(writer.drain(), self.timeouts.send)  # back-pressure
            out.popleft()
