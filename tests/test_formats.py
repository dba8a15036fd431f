"""Reading structured inputs: JSON, JSONL, HTML pages, RSS/Atom feeds, from files and from URLs served
by a real HTTP server on 127.0.0.1, and the real MultiHop-RAG corpus."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import CORPUS

from ingest.models import Article, Failure
from ingest.read import read_inputs, read_path


def write(folder: Path, name: str, data: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read_all(*targets: str) -> tuple[list[Article], list[Failure]]:
    articles: list[Article] = []
    failures: list[Failure] = []
    for found, failed in read_inputs(list(targets), timeout=5):
        articles += found
        failures += failed
    return articles, failures


# --- JSON ------------------------------------------------------------------------------------------

RECORD = {"title": "Dam opens after ten years", "author": None, "source": "River Times",
          "published_at": "2023-10-05T08:30:00+00:00", "category": "environment",
          "url": "https://rivertimes.example/dam", "body": "The new dam opened on Friday.\n\nIt cost $2bn."}


def test_json_single_object(tmp_path):
    (art,), failures = read_path(write(tmp_path, "dam.json", json.dumps(RECORD)))
    assert failures == []
    assert (art.title, art.source, art.category, art.url) == (
        "Dam opens after ten years", "River Times", "environment", "https://rivertimes.example/dam")
    assert art.author == "" and art.body == RECORD["body"]
    assert art.published_at == datetime(2023, 10, 5, 8, 30, tzinfo=UTC)


def test_json_list_with_aliases_and_bad_items(tmp_path):
    items = [RECORD,
             {"title": "Text alias", "text": "Body under text.", "url": "https://x.example/1"},
             {"title": "Content alias", "content": "Body under content.", "url": "https://x.example/2"},
             {"title": "Empty body", "body": "", "text": "Fallback text wins.", "url": "https://x.example/3"},
             "not an object", {"title": "No body at all"}, {"title": "Blank", "body": "  \n "},
             {"title": "Numeric", "body": 42}, [1, 2]]
    path = write(tmp_path, "list.json", json.dumps(items, indent=2))
    articles, failures = read_path(path)
    assert [a.body for a in articles] == [RECORD["body"], "Body under text.", "Body under content.",
                                          "Fallback text wins."]
    assert [a.origin for a in articles] == [f"{path}#{i}" for i in range(4)]
    assert len({a.id for a in articles}) == 4
    reasons = {f.path: f.error for f in failures}
    assert reasons == {
        f"{path}#4": "expected a JSON object for an article, got a string",
        f"{path}#5": "article has no text (no 'body', 'text' or 'content' field)",
        f"{path}#6": "article has no text ('body' is empty)",
        f"{path}#7": "article has no text ('body' is a number, not text)",
        f"{path}#8": "expected a JSON object for an article, got a list",
    }


def test_json_without_title_takes_first_sentence_after_dateline(tmp_path):
    record = {"body": "WASHINGTON (Reuters) - The U.S. Senate passed the bill. It now goes to the House."}
    (art,), _ = read_path(write(tmp_path, "wire.json", json.dumps(record)))
    assert (art.title, art.source, art.place) == ("The U.S. Senate passed the bill", "Reuters", "Washington")


def test_json_dates_and_ids(tmp_path):
    items = [{"title": "A", "body": "a", "published_at": 1696494600, "id": "story-1"},
             {"title": "B", "body": "b", "date": "Thu, 05 Oct 2023 08:30:00 GMT", "id": "has spaces / slash"},
             {"title": "C", "body": "c", "published": "yesterday-ish"}]
    articles, failures = read_path(write(tmp_path, "dates.json", json.dumps(items)))
    assert failures == []
    when = datetime(2023, 10, 5, 8, 30, tzinfo=UTC)
    assert [a.published_at for a in articles] == [when, when, None]
    assert articles[0].id == "story-1" and len(articles[1].id) == 16 and " " not in articles[1].id


def test_json_lines_saved_as_json_are_read(tmp_path):
    text = json.dumps({"title": "A", "body": "a"}) + "\n" + json.dumps({"title": "B", "body": "b"}) + "\n"
    articles, failures = read_path(write(tmp_path, "lines.json", text))
    assert ([a.title for a in articles], failures) == (["A", "B"], [])


@pytest.mark.parametrize(("data", "reason"), [
    ('{"title": "x",\n "body": "y",\n}', "malformed JSON: Expecting property name enclosed in double quotes "
                                           "at line 3 column 1"),
    ("[]", "JSON list holds no articles"),
    ("null", "expected a JSON object for an article, got null"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON: nested too deeply"),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, "malformed JSON: nested too deeply"),
])
def test_bad_json_file(tmp_path, data, reason):
    path = write(tmp_path, "bad.json", data)
    assert read_path(path) == ([], [Failure(path=str(path), error=reason)])


def test_real_multihop_corpus():
    articles, failures = read_path(CORPUS)
    assert failures == [] and len(articles) == 609
    assert len({a.id for a in articles}) == 609
    raw = json.loads(CORPUS.read_text(encoding="utf-8"))
    for art, rec in zip(articles, raw, strict=True):
        assert (art.title, art.url, art.source) == (" ".join(rec["title"].split()), rec["url"], rec["source"])
        assert art.published_at == datetime.fromisoformat(rec["published_at"])
        assert art.author == (rec["author"] or "")
        assert art.body == rec["body"].strip()


# --- JSONL ------------------------------------------------------------------------------------------

def test_jsonl_with_a_malformed_line(tmp_path):
    lines = [json.dumps({"title": "One", "body": "First."}), "",
             json.dumps({"title": "Two", "body": "Second."}), '{"title": "Broken", "body": ',
             json.dumps({"title": "Four", "body": "Fourth."}), json.dumps({"title": "No text"})]
    path = write(tmp_path, "feed.jsonl", "\n".join(lines) + "\n")
    articles, failures = read_path(path)
    assert [(a.title, a.origin) for a in articles] == [
        ("One", f"{path}:1"), ("Two", f"{path}:3"), ("Four", f"{path}:5")]
    assert [f.path for f in failures] == [f"{path}:4", f"{path}:6"]
    assert failures[0].error.startswith("malformed JSON line: Expecting value")
    assert "no text" in failures[1].error


# --- HTML -------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour bridge reopens after repairs | The Coastal Herald</title>
<meta property="og:site_name" content="The Coastal Herald">
<meta property="og:title" content="Harbour bridge reopens after repairs">
<meta property="article:published_time" content="2023-10-05T09:30:00+00:00">
<meta name="author" content="Maria Lopez">
<link rel="canonical" href="https://coastalherald.example/news/harbour-bridge">
<script>var tracker = "SCRIPT_IN_HEAD";</script><style>.ad { color: red }</style>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport section</a></li></ul></nav>
<main><article><h1>Harbour bridge reopens after repairs</h1><p class="byline">By Maria Lopez</p>
<p>The harbour bridge reopened to traffic on Thursday after six months of repairs costing
12 million dollars.</p>
<p>Engineers replaced the corroded steel cables and resurfaced the deck, which carries 40,000 cars a day.</p>
<p>"We are delighted to give the bridge back to the people who use it," said the mayor, Anna Berg.</p>
</article></main>
<footer><p>Copyright 2023 The Coastal Herald. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
<script>document.write("SCRIPT_IN_BODY")</script>
</body></html>"""


def check_page(art: Article) -> None:
    assert art.title == "Harbour bridge reopens after repairs"
    assert (art.source, art.author) == ("The Coastal Herald", "Maria Lopez")
    assert art.published_at is not None and art.published_at.date().isoformat() == "2023-10-05"
    assert art.url == "https://coastalherald.example/news/harbour-bridge"
    assert art.body.startswith("The harbour bridge reopened to traffic on Thursday")
    assert "said the mayor, Anna Berg." in art.body
    for junk in ("SCRIPT_IN", "tracker", "Sport section", "Copyright", "Privacy policy", "color: red"):
        assert junk not in art.body


@pytest.mark.parametrize("name", ["bridge.html", "bridge"])  # by extension, and sniffed
def test_html_page(tmp_path, name):
    (art,), failures = read_path(write(tmp_path, name, PAGE))
    assert failures == []
    check_page(art)


def test_html_page_with_only_navigation_fails(tmp_path):
    html = ("<html><head><title>Shop</title></head><body><nav><a href='/'>Home</a></nav>"
            "<footer>(c) Shop</footer></body></html>")
    path = write(tmp_path, "nav.html", html)
    assert read_path(path) == ([], [Failure(path=str(path), error="no article text found in the HTML page")])


# --- feeds ------------------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Valley Gazette</title>
<link>https://gazette.example/</link><description>Local news</description>
<item><title>Dam level rises after storms</title><link>https://gazette.example/dam</link>
<pubDate>Thu, 05 Oct 2023 08:00:00 GMT</pubDate><author>news@gazette.example (Tom Reed)</author>
<category>Environment</category>
<description>&lt;p&gt;The reservoir rose &lt;b&gt;two metres&lt;/b&gt; overnight.&lt;/p&gt;
&lt;p&gt;Farmers welcomed the
rain.&lt;/p&gt;&lt;script&gt;alert("SCRIPT")&lt;/script&gt;</description></item>
<item><title>School opens new library</title><link>https://gazette.example/library</link>
<pubDate>Fri, 06 Oct 2023 10:15:00 +0200</pubDate><dc:creator>Ann Lee</dc:creator>
<description>Pupils now have 5,000 books.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Metro Wire</title><id>urn:metro</id>
<updated>2023-10-05T12:00:00Z</updated>
<entry><title>Tram line extended</title><link rel="alternate" href="https://metro.example/tram"/><id>urn:metro:1</id>
<published>2023-10-05T11:00:00Z</published><updated>2023-10-05T12:00:00Z</updated>
<author><name>Sam Park</name></author><summary>Short summary.</summary>
<content type="html">&lt;p&gt;The tram line now reaches the airport.&lt;/p&gt;
&lt;p&gt;Trips take 20 minutes.&lt;/p&gt;</content>
</entry>
<entry><title>Entry without a link</title><id>urn:metro:2</id><updated>2023-10-04T12:00:00Z</updated>
<summary>Only a summary here.</summary></entry>
</feed>"""


def check_rss(articles: list[Article]) -> None:
    dam, library = articles
    assert (dam.title, dam.url, dam.author, dam.source, dam.category) == (
        "Dam level rises after storms", "https://gazette.example/dam", "Tom Reed", "Valley Gazette",
        "Environment")
    assert dam.published_at == datetime(2023, 10, 5, 8, 0, tzinfo=UTC)
    assert dam.body == "The reservoir rose two metres overnight.\n\nFarmers welcomed the rain."
    assert (library.author, library.source) == ("Ann Lee", "Valley Gazette")
    assert library.body == "Pupils now have 5,000 books."
    assert library.published_at is not None
    assert library.published_at.isoformat() == "2023-10-06T10:15:00+02:00"


@pytest.mark.parametrize("name", ["gazette.rss", "gazette.xml", "gazette"])
def test_rss_file(tmp_path, name):
    articles, failures = read_path(write(tmp_path, name, RSS))
    assert failures == []
    check_rss(articles)


def test_atom_file(tmp_path):
    path = write(tmp_path, "metro.atom", ATOM)
    (tram, nolink), failures = read_path(path)
    assert failures == []
    assert (tram.title, tram.url, tram.author, tram.source) == (
        "Tram line extended", "https://metro.example/tram", "Sam Park", "Metro Wire")
    assert tram.body == "The tram line now reaches the airport.\n\nTrips take 20 minutes."
    assert tram.published_at == datetime(2023, 10, 5, 11, 0, tzinfo=UTC)
    assert (nolink.url, nolink.id, nolink.body) == ("", "urn:metro:2", "Only a summary here.")
    assert nolink.origin == f"{path}#1"


@pytest.mark.parametrize(("data", "reason"), [
    ("<?xml version='1.0'?><rss><channel><title>Empty</title></channel></rss>", "feed has no entries"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary file, not a feed"),
])
def test_bad_feed(tmp_path, data, reason):
    path = write(tmp_path, "bad.rss", data)
    assert read_path(path) == ([], [Failure(path=str(path), error=reason)])


# --- URLs, served by a real HTTP server on 127.0.0.1 -------------------------------------------------

ROUTES = {
    "/feed": ("application/rss+xml", RSS.encode()),
    "/news/bridge": ("text/html; charset=utf-8", PAGE.encode()),
    "/data/items.json": ("text/plain", json.dumps([RECORD]).encode()),
    "/story": ("text/plain; charset=utf-8", b"PARIS (AFP) - The Louvre reopened after a strike."),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in ROUTES:
            self.send_error(404, "Not Found")
            return
        ctype, body = ROUTES[self.path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_rss_feed_from_url(server):
    articles, failures = read_all(f"{server}/feed")
    assert failures == []
    check_rss(articles)
    assert [a.origin for a in articles] == [f"{server}/feed#0", f"{server}/feed#1"]


def test_html_page_from_url(server):
    (art,), failures = read_all(f"{server}/news/bridge")
    assert failures == []
    check_page(art)


def test_json_served_as_text_plain_uses_url_extension(server):
    (art,), failures = read_all(f"{server}/data/items.json")
    assert failures == [] and art.title == RECORD["title"]


def test_text_from_url_is_identified_by_its_url(server):
    (art,), failures = read_all(f"{server}/story")
    assert failures == []
    assert (art.url, art.source, art.place) == (f"{server}/story", "AFP", "Paris")
    assert art.title == "The Louvre reopened after a strike"


def test_url_errors_are_failures(server):
    closed = f"http://127.0.0.1:{_closed_port()}/x"
    articles, failures = read_all(f"{server}/missing", closed, f"{server}/feed")
    assert len(articles) == 2
    assert failures[0] == Failure(path=f"{server}/missing", error="cannot fetch: HTTP 404 Not Found")
    assert failures[1].path == closed and failures[1].error.startswith("cannot fetch:")
    assert "refused" in failures[1].error.lower()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
