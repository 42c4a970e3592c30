"""Lesson 04 (asynchronous, non-blocking): the coroutine server, on asyncio.

The generator server again, from the standard library: `await` where it had
`yield`, asyncio's event loop (in one background thread) where it had its own
scheduler, and streams (reader, writer) where it called recv() and send().
Each connection is one coroutine that reads like serve_blocking() in blocking.py.

Two things asyncio leaves to us. Back-pressure: writer.write() never blocks,
it only buffers, so without `await writer.drain()` a 1 GiB file would pile up
in memory; files go out with loop.sendfile, a slice at a time. Timeouts:
asyncio.wait_for() around every wait, or an idle client holds its socket forever.

Trade-off: still one thread, so one /cpu request stalls every client; in
return, a loop with timers, sendfile, TLS and subprocesses already written.
"""

import asyncio
from collections import deque

from ..protocol import Connection, Delay, FileBody
from .blocking import LINGER, RECV_SIZE, RecvDeadline, close_chunks, peer_name
from .nonblocking import SLICE
from .server import Server

if hasattr(asyncio, "timeout"):  # Python 3.11+
    async def wait_for(awaitable, seconds):
        """asyncio.wait_for() with just a timer: before 3.12, wait_for() also
        runs `awaitable` in a task of its own, +60 % CPU per request here."""
        async with asyncio.timeout(seconds):
            return await awaitable
else:
    wait_for = asyncio.wait_for


class AsyncioServer(Server):
    name = "asyncio"
    description = "asyncio streams: one coroutine per connection on asyncio's event loop"

    def launch(self):
        self.loop = asyncio.new_event_loop()
        self.stop_requested = asyncio.Event()
        self.clients = {}  # task -> its writer, to close every connection on stop()
        self.spawn(self.serve_forever)

    def serve_forever(self):
        try:
            self.loop.run_until_complete(self.main())
        finally:
            # More turns of the loop: closed transports release their sockets.
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    async def main(self):
        server = await asyncio.start_server(self.on_connect, sock=self.listener)
        await self.stop_requested.wait()
        server.close()
        for task, writer in list(self.clients.items()):
            writer.transport.abort()  # close now, unsent bytes and all
            task.cancel()
        await asyncio.gather(*self.clients, return_exceptions=True)

    def on_connect(self, reader, writer):
        # Our own task, not start_server's: we cancel it on stop(), and 3.11's
        # start_server reports a cancelled task of its own as an error.
        task = self.loop.create_task(self.serve_client(reader, writer))
        self.clients[task] = writer
        task.add_done_callback(self.clients.pop)

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
            await self.linger(reader, writer)
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

    async def linger(self, reader, writer):
        """FIN, then read until the client closes too (see Client._start_lingering)."""
        writer.write_eof()
        deadline = self.loop.time() + LINGER
        while await wait_for(reader.read(RECV_SIZE), deadline - self.loop.time()):
            pass

    def interrupt(self):
        try:
            self.loop.call_soon_threadsafe(self.stop_requested.set)
        except RuntimeError:  # the loop has already closed
            pass
