"""Checks for lesson 05 (coroutines and asyncio): the upper echo as a generator task and as a coroutine.

The same conversation as lesson 04's callback check, run on two other loops
of one thread each: `check.Scheduler??` resumes a generator task when the
socket it yielded is ready; `check.AsyncioLoop??` runs an asyncio handler on
an event loop of its own. Both loops, the four clients and the order in which
they talk are written once, in labserver/checks/lesson04.py.
"""

from .lesson04 import AsyncioLoop, Scheduler, upper_echo_async, upper_echo_task

__all__ = ["AsyncioLoop", "Scheduler", "upper_echo_async", "upper_echo_task"]
