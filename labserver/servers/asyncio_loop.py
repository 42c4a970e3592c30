"""asyncio's event loop behind the Server contract: what the asyncio model
needs around its coroutine (AsyncioServer.serve_client).

    start()   a new event loop in a background thread; asyncio.start_server()
              on our listener, which starts a task per connection
    stop()    every connection aborted, its task cancelled, the loop closed

And wait_for(awaitable, seconds), the timeout the model puts around every wait.
"""

import asyncio

from .server import Server

if hasattr(asyncio, "timeout"):  # Python 3.11+
    async def wait_for(awaitable, seconds):
        """asyncio.wait_for() with just a timer: before 3.12, wait_for() also
        runs `awaitable` in a task of its own, which costs CPU on every wait."""
        async with asyncio.timeout(seconds):
            return await awaitable
else:
    wait_for = asyncio.wait_for


class AsyncioLoopServer(Server):
    """The base of the asyncio model: subclasses define the coroutine
    serve_client(reader, writer), one per connection."""

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
        raise NotImplementedError

    def interrupt(self):
        try:
            self.loop.call_soon_threadsafe(self.stop_requested.set)
        except RuntimeError:  # the loop has already closed
            pass
