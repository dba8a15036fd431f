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


# --- every rendering path escapes text: titles, outlets, bodies, answers (offline and model-written) -------

PAYLOADS = ["<img src=x onerror=alert(11)>", "<svg onload=alert(12)>", "\"><script>alert(13)</script>",
            "<iframe src=javascript:alert(14)></iframe>", "<b onmouseover=alert(15)>bold</b>"]
TAGS = ("img", "svg", "iframe", "script", "b")
INJECTED = ", ".join(f"{where} {tag}" for where in ("main", "dialog") for tag in TAGS)


@pytest.fixture
def hostile_app(settings, small_embedder, tmp_path, fake_llm_server):
    """The app over articles whose title, outlet, author and body carry markup payloads; /ask answered
    by the scripted model, whose reply repeats payloads (markdown and HTML)."""
    import dataclasses

    from test_api import served

    from assistant.answer import Answerer
    from assistant.llm import OpenAILLM
    from assistant.service import open_service
    from ingest.pipeline import ingest

    records = [{"title": f"Harbour sign {n} {p}", "author": p, "source": f"{p} Gazette {n}",
                "published_at": f"2021-04-1{n}", "category": "world", "url": f"javascript:alert({n})",
                "body": f"The mayor of Port Ellis wrote {p} on the harbour sign {n}, the council said on "
                        f"Friday. Workers repainted harbour sign {n} within two days, officials added."}
               for n, p in enumerate(PAYLOADS)]
    (tmp_path / "hostile.json").write_text(json.dumps(records), encoding="utf-8")
    service = open_service(settings, embedder=small_embedder)
    inputs = [str(SEED), str(tmp_path / "hostile.json")]
    assert not ingest(inputs, service.store, small_embedder, settings).failed
    service.refresh()
    fake_llm_server.default = lambda messages: (
        f"The mayor wrote {PAYLOADS[0]} on the sign [1]. {PAYLOADS[2]} See [the sign](javascript:alert(16)) "
        f"and ![x](https://evil.example/x.png) {PAYLOADS[1]} [1].")
    with OpenAILLM("fake-model", base_url=fake_llm_server.base_url, timeout_s=10, max_retries=0) as llm:
        answerer = Answerer(service.retriever, service.answerer.extractive, llm)
        with served(settings, dataclasses.replace(service, answerer=answerer)) as client:
            yield str(client.base_url).rstrip("/"), service


def assert_inert(page) -> None:
    page.wait_for_timeout(300)  # an injected handler would have fired by now
    assert page.locator(INJECTED).count() == 0, page.locator(INJECTED).first.evaluate("e => e.outerHTML")
    assert page.dialogs == [] and not page.js_errors


def test_payloads_in_titles_outlets_bodies_and_answers_stay_text(browser, hostile_app):
    url, _ = hostile_app
    browse = open_page(browser, url + "/browse")
    browse.locator(".article-item").nth(len(PAYLOADS) - 1).wait_for()
    text = browse.locator("main").inner_text()
    for payload in PAYLOADS:  # titles and outlets shown literally
        assert payload in text, payload
    assert browse.locator("main a[href^='javascript']").count() == 0
    assert_inert(browse)

    page = open_page(browser, url + "/")
    page.locator("#filters summary").click()  # the outlet filter list renders the outlet names
    page.locator("#outlet-list input").nth(len(PAYLOADS) - 1).wait_for()
    assert PAYLOADS[2] in page.locator("#outlet-list").inner_text()
    question = f"What did the council say the mayor of Port Ellis wrote on harbour sign 0? {PAYLOADS[3]}"
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".turn-assistant .answer-body[aria-busy=false]").first
    answer.wait_for()
    assert PAYLOADS[3] in page.locator(".turn-user").first.inner_text()  # the question echoed as text
    assert "The mayor wrote" in answer.inner_text()  # the model reply (markup stripped or shown as text)
    assert page.locator("main a[href^='javascript'], main a[href*='evil.example']").count() == 0
    chip = answer.locator("button.chip").first
    chip.click()
    page.locator("#passage-dialog").wait_for(state="visible")
    dialog_text = page.locator("#passage-dialog").inner_text()
    assert "Harbour sign" in dialog_text and "harbour sign" in dialog_text  # title and passage as text
    assert any(p in dialog_text for p in PAYLOADS)
    assert page.locator("#passage-dialog a[href^='javascript']").count() == 0
    assert_inert(page)


def test_offline_answer_quoting_a_payload_stays_text(browser, hostile_app):
    from test_api import served

    _, service = hostile_app  # the offline answerer over the same store
    with served(service.settings, service) as client:
        page = open_page(browser, str(client.base_url).rstrip("/") + "/")
        page.get_by_label("Your question").fill("What did the council say the mayor of Port Ellis wrote on "
                                                "harbour sign 1?")
        page.get_by_label("Your question").press("Enter")
        answer = page.locator(".turn-assistant .answer-body[aria-busy=false]").first
        answer.wait_for()
        assert "harbour sign" in answer.inner_text()  # quoted sentences (markup stripped or shown as text)
        assert page.locator(".sources-list li").count() >= 1
        assert any(p in page.locator(".sources-list").inner_text() for p in PAYLOADS)  # outlet/title
        assert_inert(page)
