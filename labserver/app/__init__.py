"""Applications: a Request goes in, a Response comes out, no sockets.

StaticFiles serves a folder safely. Every server model runs the same
application, so any difference you measure between models is the model.
"""

from .static import StaticFiles, content_type, url_segments
from .workloads import Workloads


def make_app(root):
    """The application every server runs by default: the workload routes
    (/bytes/N, /cpu, /sleep, /block) in front of the files under `root`."""
    return Workloads(StaticFiles(root))


__all__ = ["StaticFiles", "Workloads", "content_type", "make_app", "url_segments"]
