"""Lesson 05: the heart of a Task (step), and the upper-case echo as a generator task and as an asyncio coroutine."""

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


# Exercise 1: step(task, value), the heart of a Task.


@right("05", "task_step")
def step_with_a_named_callback(task, value):
    try:
        future = task.coro.send(value)
    except StopIteration as finished:
        task.set_result(finished.value)
    else:
        def wake(done):
            step_with_a_named_callback(task, done.result)

        future.add_done_callback(wake)


@right("05", "task_step")
def step_that_loops_over_done_futures(task, value):
    while True:
        try:
            future = task.coro.send(value)
        except StopIteration as finished:
            task.set_result(finished.value)
            return
        if not future.done:
            future.add_done_callback(lambda done: step_that_loops_over_done_futures(task, done.result))
            return
        value = future.result  # already there: no need to wait for a callback


@wrong("05", "task_step", "received None, not the future's result.*next\\(\\) sends None")
def next_instead_of_send(task, value):
    try:
        future = next(task.coro)
    except StopIteration as finished:
        task.set_result(finished.value)
        return
    future.add_done_callback(lambda done: next_instead_of_send(task, done.result))


@wrong("05", "task_step", "received the future itself, not its result")
def sends_the_future(task, value):
    try:
        future = task.coro.send(value)
    except StopIteration as finished:
        task.set_result(finished.value)
        return
    future.add_done_callback(lambda done: sends_the_future(task, done))


@wrong("05", "task_step", "let StopIteration out")
def no_stop_iteration(task, value):
    future = task.coro.send(value)
    future.add_done_callback(lambda done: no_stop_iteration(task, done.result))


@wrong("05", "task_step", "the task is not done")
def forgets_the_task(task, value):
    try:
        future = task.coro.send(value)
    except StopIteration:
        return
    future.add_done_callback(lambda done: forgets_the_task(task, done.result))


@wrong("05", "task_step", "task's result is None.*StopIteration's .value")
def result_none(task, value):
    try:
        future = task.coro.send(value)
    except StopIteration:
        task.set_result(None)
        return
    future.add_done_callback(lambda done: result_none(task, done.result))


@wrong("05", "task_step", "missing 1 required positional argument.*lambda done: step\\(task, done.result\\)")
def step_as_the_callback(task, value):
    try:
        future = task.coro.send(value)
    except StopIteration as finished:
        task.set_result(finished.value)
        return
    future.add_done_callback(step_as_the_callback)


@wrong("05", "task_step", "never resumed: add a done callback")
def never_calls_back(task, value):
    try:
        task.coro.send(value)
    except StopIteration as finished:
        task.set_result(finished.value)


@wrong("05", "task_step", "did not return within .*it never waits", hangs=True)
def waits_for_the_future(task, value):
    while True:
        try:
            future = task.coro.send(value)
        except StopIteration as finished:
            task.set_result(finished.value)
            return
        while not future.done:
            time.sleep(0.01)  # nobody else can resolve it while we wait here
        value = future.result
