"""Every concurrency model of the lecture, on one Server interface, in lesson order.

    from labserver.servers import get_model
    with get_model("threadpool")(root="site") as srv:
        print(srv.url)
"""

from .asyncio_server import AsyncioServer
from .busywait import BusyWaitServer
from .callbacks import CallbackServer
from .coroutines import CoroutineServer
from .iterative import IterativeServer
from .pool import BlockingPoolServer
from .processes import ProcessPoolServer
from .selectserver import SelectServer
from .server import Server, ServerError
from .threadpool import ThreadPoolServer
from .threads import ThreadPerConnectionServer

# name -> class, in the order the lessons introduce them.
MODELS = {cls.name: cls for cls in [
    IterativeServer,  # 01 blocking recv()
    BusyWaitServer,  # 02 non-blocking recv()
    SelectServer,  # 03 select()
    CallbackServer,  # 04 an event loop calling callbacks
    CoroutineServer,  # 05 the same loop, resuming a generator per connection
    AsyncioServer,  # 05 the same on asyncio
    ThreadPerConnectionServer,  # 06 a thread per connection
    BlockingPoolServer,  # 06 a pool of threads, each running the blocking loop
    ThreadPoolServer,  # 06 the complete multithreaded server: lesson 04's loop plus a pool
    ProcessPoolServer,  # 07 processes and the GIL
]}
DEFAULT_MODEL = "threadpool"


def get_model(name):
    """The server class registered under `name`, or ServerError listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ServerError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


__all__ = ["Server", "ServerError", "MODELS", "DEFAULT_MODEL", "get_model", "IterativeServer",
           "BusyWaitServer", "SelectServer", "CallbackServer",
           "CoroutineServer", "AsyncioServer", "ThreadPerConnectionServer", "BlockingPoolServer", "ThreadPoolServer",
           "ProcessPoolServer"]
