"""Acceptance test: a real browser loads the demo site from our server.

Headless Chromium opens every demo page twice: over HTTP from ThreadPoolServer,
and straight from disk (file://), which needs no server at all and so is the
reference. Three independent witnesses must agree that the page is whole:

1. The server's access log: every file the page needs was requested, and every
   request was answered 200.
2. The page itself: site.js sets <html data-page-check="ok"> only if every
   image decoded, the stylesheet applied and no script failed; and the browser
   printed nothing to its console (the site never logs on purpose).
3. The pixels: the screenshot over HTTP is byte-identical to the one from disk.

A missing or truncated image, a Content-Type the browser refuses (CSS, SVG), a
JavaScript error or any difference in rendering trips at least one of them.
"""

import logging
import re
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from labserver import DEMO_SITE
from labserver.servers import ThreadPoolServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")

CHROMIUM_FLAGS = [
    "--headless", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,900",
    # Root (as in containers and CI) cannot use Chromium's sandbox.
    "--no-sandbox",
    # A small /dev/shm (Docker's default is 64 MB) makes Chromium crash; use /tmp.
    "--disable-dev-shm-usage",
    # No traffic but ours: no QUIC, updates, sync or first-run pages.
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # Console messages go to stderr, where render() looks for them.
    "--enable-logging=stderr", "--v=0",
    # Timers run on virtual time, and the screenshot waits until the page is idle.
    "--virtual-time-budget=5000",
    # Paint every tile completely before the screenshot. Without these, on a busy
    # machine about 1 screenshot in 10 had a tile painted late or not at all.
    # (site.js helps too: nothing on the page changes after "load".)
    "--run-all-compositor-stages-before-draw", "--disable-partial-raster",
    "--disable-checker-imaging",
]

# Each page as (path on the server, file on disk). "lessons/" is a directory:
# the server has to find its index.html by itself.
PAGES = [("", "index.html"), ("about.html", "about.html"), ("lessons/", "lessons/index.html")]

# The access log line, e.g. 127.0.0.1:5123 "GET /css/style.css HTTP/1.1" 200 1808
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/\d\.\d" (?P<status>\d{3}) ')


class PageParser(HTMLParser):
    """What a page refers to (src and href), and the verdict of site.js."""

    def __init__(self, html):
        super().__init__()
        self.resources = []     # (tag, rel, url) of img, script and link elements
        self.links = []         # href of <a> elements
        self.page_check = None  # <html data-page-check="...">, set by site.js after "load"
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "script") and "src" in attrs:
            self.resources.append((tag, None, attrs["src"]))
        elif tag == "link" and "href" in attrs:
            self.resources.append((tag, attrs.get("rel"), attrs["href"]))
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "html":
            self.page_check = attrs.get("data-page-check")


def render(url, workdir):
    """Open url in a fresh headless Chromium. Returns (DOM after load, PNG screenshot, console lines)."""
    workdir.mkdir()
    screenshot = workdir / "screenshot.png"
    result = subprocess.run(
        # A fresh profile each time: no cache, so every file really comes from the server.
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}",
         f"--screenshot={screenshot}", "--dump-dom", url],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=60)
    assert result.returncode == 0 and screenshot.exists(), f"Chromium failed on {url}:\n{result.stderr}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, screenshot.read_bytes(), console


def assert_page_ok(dom, console, url):
    """The page's own verdict (written by site.js) and a silent console."""
    # The console first: a script error there explains a missing verdict best.
    assert not console, f"{url}: the browser console was not empty:\n" + "\n".join(console)
    verdict = PageParser(dom).page_check or "site.js never ran"
    assert verdict == "ok", f"{url}: {verdict}"


class Collector(logging.Handler):
    """Keeps the message of every log record it receives."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def demo_server():
    """A ThreadPoolServer on the demo site, and the list its access log is written to."""
    access = logging.getLogger("labserver.access")
    collector, old_level = Collector(), access.level
    access.addHandler(collector)
    access.setLevel(logging.INFO)   # otherwise the root's WARNING level drops INFO records
    try:
        with ThreadPoolServer(root=DEMO_SITE, port=0) as srv:
            yield srv, collector.messages
    finally:
        access.removeHandler(collector)
        access.setLevel(old_level)


@needs_chromium
@pytest.mark.parametrize("server_path, disk_path", PAGES, ids=[disk for _, disk in PAGES])
def test_page_over_http_looks_exactly_like_from_disk(demo_server, server_path, disk_path, tmp_path):
    srv, access_log = demo_server
    http_url = srv.url + server_path
    file_url = (DEMO_SITE / disk_path).as_uri()

    # The reference first: if this fails, the demo site is broken, not the server.
    disk_dom, disk_png, disk_console = render(file_url, tmp_path / "disk")
    assert_page_ok(disk_dom, disk_console, file_url)

    access_log.clear()
    http_dom, http_png, http_console = render(http_url, tmp_path / "http")

    # Witness 1: the server's own record.
    requested = set()
    for line in list(access_log):
        match = ACCESS_LINE.search(line)
        assert match and match["status"] == "200", f"request not answered 200: {line}"
        requested.add(unquote(urlsplit(match["target"]).path))
    # Everything the page refers to must have been requested. The favicon is left
    # out: browsers fetch it lazily, maybe after the screenshot (if it was fetched,
    # the loop above has checked it got a 200).
    source = (DEMO_SITE / disk_path).read_text(encoding="utf-8")
    needed = {unquote(urlsplit(urljoin(http_url, url)).path)
              for _, rel, url in PageParser(source).resources if rel != "icon"}
    needed.add(urlsplit(http_url).path)
    assert needed <= requested, f"never requested from the server: {sorted(needed - requested)}"

    # Witness 2: the page's own check and the browser console.
    assert_page_ok(http_dom, http_console, http_url)

    # Witness 3: the pixels. Both PNGs stay in tmp_path for a look if they differ.
    assert http_png == disk_png, (
        f"{http_url} renders differently over HTTP than from disk: "
        f"compare {tmp_path / 'http' / 'screenshot.png'} with {tmp_path / 'disk' / 'screenshot.png'}")


def test_demo_site_links_point_to_files_that_exist():
    """Every src and href is relative and names a file of the site, so the site works
    from disk and offline, and the browser test above misses nothing (e.g. the <a>
    to "docs/naïve notes.txt", which no page loads by itself)."""
    pages = sorted(DEMO_SITE.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        parsed = PageParser(page.read_text(encoding="utf-8"))
        for url in [url for _, _, url in parsed.resources] + parsed.links:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page.name}: external URL {url}"
            # The browser percent-decodes as UTF-8, so must we.
            target = page.parent / unquote(parts.path, errors="strict")
            assert target.is_file(), f"{page.relative_to(DEMO_SITE)}: broken link {url}"
