"""labserver: a Jupyter course kit for parallel network programming.

One HTTP/1.1 core (labserver.protocol, labserver.app) and, on top of it, every
server model of the lecture (labserver.servers), ending in a complete
multithreaded HTTP server.
"""

from pathlib import Path

DEMO_SITE = Path(__file__).resolve().parent / "demo_site"

from .servers import DEFAULT_MODEL, MODELS, Server, ServerError, ThreadPoolServer, get_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DEMO_SITE", "DEFAULT_MODEL", "MODELS", "Server", "ServerError", "ThreadPoolServer", "get_model"]
