"""Checks for lesson 00 (welcome): a page fetched from a running server.

The answer is a `requests` response; the check compares it with the file on
disk and with the server's answer to the same request made now, so a
response assembled by hand does not pass.
"""

import requests

from .. import DEMO_SITE
from . import check, expect, passed, plain


@check
def about_page(about, server):
    """`about` must be the response of requests.get(server.url + "about.html")."""
    expect(plain(about, requests.Response), f"about should be what requests.get() returned, not {type(about).__name__}")
    expect(about.status_code == 200, f"expected status 200 for about.html, got {about.status_code}")
    expect(about.url == server.url + "about.html", f"you fetched {about.url}, not {server.url}about.html")
    on_disk = (DEMO_SITE / "about.html").read_bytes()  # the site lesson 00's server serves
    expect(about.content == on_disk, f"the page you got ({len(about.content)} bytes) is not about.html as the "
                                     f"server has it ({len(on_disk)} bytes)")
    again = requests.get(about.url, timeout=10)
    expect(all(about.headers.get(name) == again.headers.get(name) for name in ("ETag", "Last-Modified", "Content-Type")),
           "about's headers are not the ones this server sends for about.html: fetch it with requests.get()")
    passed(f"about.html is {len(about.content)} bytes, fetched from {server.url}")
