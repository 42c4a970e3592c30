"""Applications: a Request goes in, a Response comes out, no sockets.

StaticFiles serves a folder safely. Every server model runs the same
application, so any difference you measure between models is the model.
"""

from .static import StaticFiles, content_type, url_segments

__all__ = ["StaticFiles", "content_type", "url_segments"]
