"""The built book in headless Chromium: served from its HTML folder on localhost and driven by
Playwright, for the browser test and for ``make screenshot`` (``docs/book.png``).

Debian's Chromium is used (``make browser`` installs it); Playwright's own browser download
cannot run on these machines.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

LAPTOP = {"width": 1280, "height": 800}  # the window a reader opens the book in


def chromium() -> str:
    """Debian's Chromium, or an error naming the fix."""
    path = shutil.which("chromium")
    if not path:
        raise FileNotFoundError("Debian's chromium is missing: `make browser` installs it")
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """A file handler that does not print a line per request into the test's output."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@contextlib.contextmanager
def served(html: Path) -> Iterator[str]:
    """The folder ``html`` served on a free localhost port; yields its base URL."""
    if not (Path(html) / "index.html").exists():
        raise FileNotFoundError(f"no built book at {html}: run `make book` first")
    handler = functools.partial(_Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def page(viewport: dict | None = None) -> Iterator:
    """A Playwright page in headless Chromium at ``viewport`` (default: a laptop's)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport=viewport or LAPTOP)
        finally:
            browser.close()


def screenshot(html: Path, name: str, out: Path, full_page: bool = False) -> Path:
    """A picture of the page ``name`` (e.g. ``executed/03_patches.html``) of the book built
    in ``html``, as a laptop shows it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with served(html) as base, page() as p:
        response = p.goto(f"{base}/{name}", wait_until="networkidle")
        if response is None or not response.ok:
            raise FileNotFoundError(f"{name} is not a page of the book in {html}")
        p.screenshot(path=str(out), full_page=full_page)
    return out


CLIPPED_TABLES = """() => Array.from(document.querySelectorAll('table')).filter(t => {
  let box = t.parentElement;
  while (box && getComputedStyle(box).overflowX !== 'auto' && getComputedStyle(box).overflowX !== 'scroll'
         && box !== document.body) { box = box.parentElement; }
  const scrolls = box && box !== document.body;
  const right = t.getBoundingClientRect().right;
  return !scrolls && right > document.documentElement.clientWidth + 1;
}).length"""
"""How many tables reach past the window's right edge with no way to scroll to them."""
