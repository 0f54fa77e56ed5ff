"""The built book, opened page by page in headless Chromium with no network.

Run after `make book` (``make test`` does both). Every page must have its math typeset,
all images loaded, no JavaScript errors, no request to any host but the local server,
and internal links that resolve.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from .conftest import ROOT, in_ci

HTML = ROOT / "_build" / "html"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

pytestmark = [pytest.mark.book, pytest.mark.browser]


def _chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


def _is_redirect(path: Path) -> bool:
    return 'http-equiv="Refresh"' in path.read_text(encoding="utf-8", errors="replace")[:2000]


def _pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in HTML.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts
                  and not _is_redirect(p))


def test_index_redirects_to_the_introduction():
    html = (HTML / "index.html").read_text(encoding="utf-8")
    m = re.search(r'url=([^"\']+)', html)
    assert m, "index.html should redirect to the introduction"
    assert (HTML / m.group(1)).exists(), f"index.html redirects to a missing page: {m.group(1)}"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        if in_ci():
            pytest.fail("Chromium is required under CI (apt-get install chromium)")
        pytest.skip("Chromium not found (install Debian's `chromium` to run the browser checks)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def test_book_has_the_expected_pages():
    names = {p.relative_to(HTML).as_posix() for p in _pages()}
    for expected in ("book/intro.html", "book/api.html", "book/bibliography.html",
                     "book/ch01_energy.html", "book/ch07_canonical_models.html",
                     "book/exercises/index.html"):
        assert expected in names, f"{expected} missing from the built book"


def _check_page(browser, base: str, rel: str) -> tuple[list[str], list[str]]:
    """Open one page; return (problems, internal links found)."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    host = urlparse(base).netloc

    def on_request(route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about") or parsed.netloc == host:
            route.continue_()
        else:
            problems.append(f"request to a non-local host: {url}")
            route.abort()

    page.route("**/*", on_request)
    page.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console error: {msg.text}")
            if msg.type == "error" else None)
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}")
            if urlparse(req.url).netloc == host else None)
    response = page.goto(urljoin(base, rel), wait_until="load")
    assert response is not None and response.ok, f"{rel}: HTTP {response and response.status}"

    has_math = page.evaluate("() => document.querySelector('.math, span.math, div.math') !== null")
    if has_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=20000)
        page.evaluate("() => MathJax.startup.promise")
        n_typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        if n_typeset == 0:
            problems.append("math present but nothing typeset by MathJax")
    text = page.evaluate(
        "() => { const c = document.querySelector('main') || document.body;"
        " const clone = c.cloneNode(true);"
        " clone.querySelectorAll('mjx-container, script, style, pre, code, textarea')"
        ".forEach(e => e.remove()); return clone.innerText; }")
    for raw in (r"\(", r"\)", "$$", r"\[", r"\begin{"):
        if raw in text:
            i = text.index(raw)
            context = text[max(0, i - 40):i + 40]
            problems.append(f"raw math {raw!r} left in the text: ...{context!r}")
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)")
    problems += [f"image not loaded: {src}" for src in broken]
    if re.search(r"(IntSlider|FloatSlider|VBox|HBox|Output)\(", text):
        problems.append("a widget's repr text reached the page")
    links = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    page.close()
    internal = [u for u in links if urlparse(u).netloc == host]
    return [f"{rel}: {p}" for p in problems], internal


def test_every_page_renders_offline(browser, server):
    pages = [p.relative_to(HTML).as_posix() for p in _pages()]
    assert pages, "no HTML pages found"
    problems: list[str] = []
    links: set[str] = set()
    for rel in pages:
        page_problems, internal = _check_page(browser, server, rel)
        problems += page_problems
        links.update(internal)
    # internal links resolve to files of the built site (and their anchors exist on the page)
    for url in sorted(links):
        parsed = urlparse(url)
        target = HTML / unquote(parsed.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"broken internal link: {parsed.path}")
            continue
        if parsed.fragment and target.suffix == ".html":
            html = target.read_text(encoding="utf-8", errors="replace")
            frag = unquote(parsed.fragment)
            if f'id="{frag}"' not in html and f'name="{frag}"' not in html:
                problems.append(f"broken anchor: {parsed.path}#{frag}")
    assert not problems, "\n".join(problems)
