"""Checks for lesson 05 (coroutines and asyncio): the heart of a Task, then
the upper echo as a generator task and as a coroutine.

Exercise 1, `step(task, value)`: the check drives small generators with the
student's step, on Futures it resolves itself (labserver/tasks.py), in the
order that shows each classic bug: a generator that is never resumed, that
receives None (next() instead of send(result)) or the future instead of its
result, a StopIteration let out, a task that never finishes, a step that
waits instead of returning. Every run is under a deadline.

Exercises 2 and 3 have the same conversation as lesson 04's callback check,
run on two other loops of one thread each: `check.Scheduler??` resumes a
generator task when the socket it yielded is ready; `check.AsyncioLoop??`
runs an asyncio handler on an event loop of its own. Both loops, the four
clients and the order in which they talk are written once, in
labserver/checks/lesson04.py.
"""

import inspect

from ..tasks import Future
from . import CheckFailed, check, describe, expect, passed, run_student
from .lesson04 import AsyncioLoop, Scheduler, upper_echo_async, upper_echo_task

__all__ = ["AsyncioLoop", "Scheduler", "task_step", "upper_echo_async", "upper_echo_task"]

DEADLINE = 3.0  # seconds for each scenario: they take microseconds


class StudentTask(Future):
    """tasks.Task with the student's step: a future whose result is what the generator returns."""

    def __init__(self, step, coro):
        super().__init__()
        self.coro = coro
        step(self, None)  # run it to its first yield


def _run(step, scenario, what):
    try:
        return run_student(scenario, step, deadline=DEADLINE, name="step()",
                           doing=f"{what}; step() must return at once: it arranges to be called back, it never waits")
    except CheckFailed:
        raise
    except StopIteration:
        raise CheckFailed("step() let StopIteration out when the generator returned: catch it "
                          "(`except StopIteration as returned:`) and finish the task with "
                          "task.set_result(returned.value)") from None
    except TypeError as error:
        hint = ""
        if "positional argument" in str(error):
            hint = (". A future calls each of its callbacks with one argument, the future itself: "
                    "add a callback that calls step again with the task and the future's result, "
                    "e.g. `lambda done: step(task, done.result)`")
        raise CheckFailed(describe(error, "step()") + hint) from None
    except Exception as error:
        raise CheckFailed(describe(error, "step()")) from None


def _received(got, expected, future_name):
    """What the generator received at a yield, compared with the future's result."""
    if isinstance(got, Future):
        return (f"where your generator yielded {future_name}, it received the future itself, not its result "
                f"{expected!r}: send the future's result (`done.result`) back in")
    if got is None:
        return (f"where your generator yielded {future_name}, it received None, not the future's result "
                f"{expected!r}: resume it with task.coro.send(result); next() sends None")
    return f"where your generator yielded {future_name}, it received {got!r}, not the future's result {expected!r}"


def _two_futures(step):
    a, b, got = Future(), Future(), []

    def coro():
        got.append((yield a))
        got.append((yield b))
        return "done"

    generator = coro()
    task = StudentTask(step, generator)
    state = inspect.getgeneratorstate(generator)
    expect(state != inspect.GEN_CREATED, "creating the task did not start the generator: step(task, None) should "
                                         "resume it with task.coro.send(value), which runs it to its first yield")
    expect(not task.done, "the task says it is done while its generator waits for a future")
    b.set_result("B")  # nobody waits for b yet: nothing may happen
    expect(got == [], "the generator was resumed before the future it yielded was done")
    a.set_result("A")
    expect(got, "the future the generator yielded is done, and the generator was never resumed: add a done "
                "callback to that future (future.add_done_callback(...)) that calls step again")
    expect(got[0] == "A", _received(got[0], "A", "future a"))
    if len(got) < 2:
        raise CheckFailed("after future a was done, the generator yielded future b, which was already done, and "
                          "was never resumed: a done callback added to a future that is already done runs at once, "
                          "so add one to every future the generator yields")
    expect(got[1] == "B", _received(got[1], "B", "future b"))
    expect(task.done, "the generator returned 'done', but the task is not done: when send() raises StopIteration, "
                      "call task.set_result(...) with what the generator returned")
    expect(task.result == "done", f"the generator returned 'done', but the task's result is {task.result!r}: "
                                  "StopIteration's .value holds what the generator returned")


def _later_futures(step):
    """Futures resolved later, in another order than they were made; and a task that waits for another."""
    futures = [Future() for _ in range(5)]

    def child():
        total = 0
        for future in futures:
            total += yield future
        return total

    def parent():
        child_task = StudentTask(step, child())
        return (yield child_task) * 10  # a task is a future: its result is what child() returned

    task = StudentTask(step, parent())
    for n, future in reversed(list(enumerate(futures))):  # the last first: only futures[0] resumes the child
        future.set_result(n + 1)
    expect(task.done and task.result == 150,
           f"a parent task waited for a child task, which added up the results of 5 futures (1 to 5) and "
           f"returned 15; the parent should have finished with 150, got "
           f"{task.result if task.done else 'no result (not done)'}")


@check
def task_step(step):
    """Exercise 1: step(task, value), the heart of a Task."""
    _run(step, _two_futures, "a generator yielded future a, then future b")
    _run(step, _later_futures, "a task waited for a child task, which waited for 5 futures")
    passed("step() resumes each generator with its future's result, and finishes the task with what it returns")
