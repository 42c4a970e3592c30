"""Lesson 05: a Future and a Task, the two pieces between callbacks and `await`.

    future = Future()               # a result that is not there yet
    future.add_done_callback(fn)    # fn(future) is called when it is
    future.set_result(data)         # now it is: every callback runs

    Task(generator)                 # runs the generator to its first `yield future`;
                                    # when that future resolves, sends its result
                                    # back in, and so on until the generator returns

A callback says what to do when something happens; a Future is that
something, as an object one can hand around and wait for. A Task turns the
callbacks inside out again: the generator yields the future it waits for and
receives the result where it paused, so the code reads from top to bottom.
The event loop is lesson 04's, unchanged: a selector callback resolves the
future (`readable()` below). After "A Web Crawler With asyncio Coroutines"
(A. Jesse Jiryu Davis and Guido van Rossum, 500 Lines or Less).

asyncio.Future and asyncio.Task are these two classes, grown up: errors and
cancellation, callbacks run by the loop rather than at once, and `await`
instead of `yield from` (asyncio.Future.__await__ yields the future itself,
as __iter__ does here).

Trade-off: a future per wait costs an object and a callback each time; in
return any event (a socket, a timer, another task, a thread's result) can be
waited for in the same way, and waits can be combined.
"""

import selectors


class Future:
    """A result that is not there yet, and what to call when it is."""

    def __init__(self):
        self.result = None
        self.done = False
        self._callbacks = []

    def add_done_callback(self, fn):
        if self.done:
            fn(self)  # too late to wait: call it now
        else:
            self._callbacks.append(fn)

    def set_result(self, result):
        self.result, self.done = result, True
        for fn in self._callbacks:
            fn(self)

    def __iter__(self):
        """`result = yield from future`: pause the generator until the future
        resolves (what `await future` does on asyncio)."""
        yield self  # to the task: resume me when this future is done
        return self.result


class Task(Future):
    """Drives a generator that yields futures. A Task is itself a future: its
    result is what the generator returns, so a task can wait for another."""

    def __init__(self, coro):
        super().__init__()
        self.coro = coro
        self.step(None)  # run it to its first yield

    def step(self, value):
        try:
            future = self.coro.send(value)  # runs the generator until its next yield
        except StopIteration as returned:
            self.set_result(returned.value)  # the generator returned: so has the task
            return
        future.add_done_callback(lambda done: self.step(done.result))  # resume it with the result


# Lesson 04's event loop, with futures: a selector callback resolves the future.


def readable(selector, sock):
    """A future resolved when `sock` is readable (data, or its peer closed): recv() then returns at once."""
    future = Future()

    def on_readable():
        selector.unregister(sock)  # one wait, one callback
        future.set_result(sock)

    selector.register(sock, selectors.EVENT_READ, on_readable)
    return future


def recv(selector, sock, size=65536):
    """A coroutine of our own: `data = yield from recv(selector, sock)` reads
    like a blocking recv(), and pauses the generator instead of the thread."""
    yield from readable(selector, sock)
    return sock.recv(size)


def run(selector):
    """The event loop: call the callback of every ready socket, until nobody waits."""
    while selector.get_map():
        for key, _ in selector.select():  # sleeps until a socket is ready
            key.data()
