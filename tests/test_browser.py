"""The web UI in a real headless Chromium (Debian's /usr/bin/chromium via Playwright) against the real app:
uvicorn on loopback, a real Chroma store holding the seed article and one article with a hostile title,
the offline answerer."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import SEED

CHROMIUM = Path("/usr/bin/chromium")
XSS_TITLE = "<img src=x onerror=alert(1)>"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'"


@pytest.fixture
def app_url(settings, small_embedder, tmp_path):
    """The real app on 127.0.0.1 (a free port, a background thread), over a freshly ingested store."""
    import uvicorn

    from assistant.api import create_app
    from assistant.service import open_service
    from ingest.pipeline import ingest

    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps({
        "title": XSS_TITLE, "author": "Mallory", "source": "Evil Gazette", "published_at": "2021-04-09",
        "category": "world", "url": "javascript:alert(2)",
        "body": "Officials in Springfield announced a new bridge over the river on Friday. "
                "The bridge will open next spring, the mayor said, after two years of construction work."}),
        encoding="utf-8")
    service = open_service(settings, embedder=small_embedder)
    report = ingest([str(SEED), str(hostile)], service.store, small_embedder, settings)
    assert not report.failed and report.articles == 2, report
    service.refresh()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, service), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"Debian chromium is missing at {CHROMIUM}: install it (apt-get install chromium); "
                    "the browser tests do not use `playwright install`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def with_csp(route):
    """Serve the page under a strict Content-Security-Policy: no inline script or style may be needed."""
    response = route.fetch()
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})


def open_page(browser, url: str, width: int = 1100, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    page.dialogs, page.js_errors = [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    page.on("console", lambda m: page.js_errors.append(m.text) if m.type == "error" else None)
    page.route(re.compile(r"^http://127\.0\.0\.1:\d+/(browse)?$"), with_csp)
    page.goto(url)
    return page


def test_ask_streams_answer_with_citation_panel(browser, app_url, tmp_path):
    page = open_page(browser, app_url + "/")
    page.get_by_label("Your question").fill("What did Qureshi say about Russia?")
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".turn-assistant .answer-body[aria-busy=false]").first
    answer.wait_for()
    assert "multifaceted" in answer.inner_text()
    assert answer.get_attribute("aria-live") == "polite"
    chip = answer.locator("button.chip").first
    assert chip.inner_text().strip() == "1"
    assert page.locator(".sources-list li").count() >= 1

    chip.click()
    dialog = page.locator("#passage-dialog")
    dialog.wait_for(state="visible")
    assert "Lavrov" in page.locator("#passage-title").inner_text()
    assert "IANS" in page.locator("#passage-meta").inner_text()
    assert not page.locator("#passage-warning").is_visible()  # the citation is verified
    mark = dialog.locator("mark")
    assert mark.count() == 1 and "multifaceted relationship with Russia" in mark.inner_text()
    assert dialog.locator("a").count() == 0  # the seed has no url: no link is made
    shot = tmp_path / "answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file() and shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert not page.dialogs and not page.js_errors


def test_hostile_title_is_shown_as_text(browser, app_url):
    page = open_page(browser, app_url + "/browse")
    items = page.locator(".article-item")
    items.nth(1).wait_for()
    assert items.count() == 2
    title = page.locator(".article-title", has_text=XSS_TITLE)
    assert title.count() == 1 and title.inner_text() == XSS_TITLE
    assert title.evaluate("el => el.tagName") == "SPAN"  # a javascript: url is not made a link
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    assert page.dialogs == [] and not page.js_errors

    page.get_by_label("Search titles and outlets").fill("img")
    page.get_by_role("button", name="Search").click()
    page.locator(".result-count", has_text="of 1 article").wait_for()
    assert items.count() == 1 and page.dialogs == []


def test_phone_width_ask_box_usable(browser, app_url, tmp_path):
    page = open_page(browser, app_url + "/", width=390, height=844)
    box, button = page.get_by_label("Your question"), page.get_by_role("button", name="Ask", exact=True)
    assert box.is_visible() and button.is_visible()
    for el in (box, button):
        rect = el.bounding_box()
        assert rect and rect["x"] >= 0 and rect["x"] + rect["width"] <= 390, rect
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.get_by_role("button", name="What did Qureshi say about Russia?").click()
    answer = page.locator(".turn-assistant .answer-body[aria-busy=false]").first
    answer.wait_for()
    assert "multifaceted" in answer.inner_text()
    assert page.get_by_label("Your question").is_visible()  # still there for a follow-up
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert not page.dialogs and not page.js_errors
