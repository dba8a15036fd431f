"""Stress: the generator of hostile inputs (see `stress/hostile.py`, which ingests and checks them).

`generate(folder, n_bad, n_good)` writes hostile inputs across many families (binary, empty, whitespace,
deep JSON, invalid UTF-8, script-only HTML, billion laughs, XXE, huge titles, duplicate ids, symlinks,
FIFOs, 10k-item feeds, a 50 MB text…) and good MultiHop-RAG articles in several formats, and returns a
manifest: for each file the titles it must yield and, for a bad one, a regex its failure reasons match.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "multihop-rag" / "corpus.json"
SECRET = "XXE-SECRET-7f3a9c-DO-NOT-INGEST"


class Expect(BaseModel):
    """What one input must give: these titles stored; for a bad input, failures matching `reason`."""

    path: str
    family: str
    titles: list[str] = []
    reason: str | None = None  # regex (case-insensitive) every failure of this path matches


class Manifest(BaseModel):
    files: list[Expect]
    secret_file: str

    def by_family(self) -> dict[str, int]:
        return dict(Counter(e.family for e in self.files))


class _Gen:
    """Writes inputs into a folder and records what each must give."""

    def __init__(self, folder: Path, rng: random.Random, vocab: list[str]) -> None:
        self.folder, self.rng, self.vocab, self.files = folder, rng, vocab, []
        self.n = 0

    def name(self, family: str, ext: str) -> Path:
        self.n += 1
        return self.folder / f"{self.n:05d}_{family}{ext}"

    def add(
        self, family: str, ext: str, data: bytes, titles: list[str] | None = None, reason: str | None = None
    ) -> Path:
        path = self.name(family, ext)
        path.write_bytes(data)
        self.files.append(Expect(path=str(path), family=family, titles=titles or [], reason=reason))
        return path

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(self.vocab) for _ in range(n))

    def synthetic(self, tag: str) -> dict:
        """A small made-up article (random words, so no two are near-duplicates)."""
        title = f"Control {tag} {self.rng.randrange(10**9)}"
        return {
            "title": title,
            "source": "Hostile Test Wire",
            "published_at": "2023-10-01T00:00:00+00:00",
            "body": f"{self.words(40)}. {self.words(40)}.",
        }


def rss_feed(items: str, head: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{head}<rss version="2.0"><channel><title>Hostile Feed</title>'
        f"{items}</channel></rss>"
    ).encode()


def _item(title: str, body: str, link: str) -> str:
    return (
        f"<item><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        f"<description>{html.escape(body)}</description></item>"
    )


def _deep_json(depth: int) -> bytes:
    return b'{"title": "deep", "body": ' + b"[" * depth + b"]" * depth + b"}"


# --- hostile families: each writes one input (or a few) -----------------------------------------------
def _binary(g: _Gen) -> None:
    ext = g.rng.choice([".txt", ".json", ".html", ".md", ""])
    g.add("binary", ext, bytes([0]) + g.rng.randbytes(g.rng.randrange(64, 8192)), reason="binary")


def _magic(g: _Gen) -> None:
    kind = g.rng.choice(["zip", "gzip", "png"])
    data = {
        "zip": b"PK\x03\x04" + g.rng.randbytes(512),
        "png": b"\x89PNG\r\n\x1a\n" + g.rng.randbytes(512),
        "gzip": gzip.compress(g.words(200).encode()),
    }[kind]
    g.add(f"magic_{kind}", ".txt", data, reason="binary")


def _empty(g: _Gen) -> None:
    g.add("empty", g.rng.choice([".txt", ".json", ".html", ".xml", ""]), b"", reason="empty input")


def _whitespace_file(g: _Gen) -> None:
    g.add(
        "whitespace_file", ".txt", g.rng.choice([b" ", b"\n\n\t ", b"\r\n" * 500]), reason="only whitespace"
    )


def _whitespace_body(g: _Gen) -> None:
    body = g.rng.choice(["   ", "\n\t\n", "\u200b\u200b\ufeff", " . , ; ", "\u00a0\u2003"])
    if g.rng.random() < 0.5:
        g.add(
            "whitespace_body",
            ".json",
            json.dumps({"title": "Blank", "body": body}).encode(),
            reason="no text",
        )
    else:
        g.add("whitespace_body", ".md", f"---\ntitle: Blank\n---\n{body}\n".encode(), reason="no text")


def _deep_json_family(g: _Gen) -> None:
    data = b"[" * 100_000 + b"]" * 100_000 if g.rng.random() < 0.5 else _deep_json(50_000)
    g.add("deep_json", ".json", data, reason="nested too deeply")


def _invalid_utf8(g: _Gen) -> None:
    g.add(
        "invalid_utf8", ".txt", bytes(g.rng.randrange(0xC0, 0x100) for _ in range(2000)), reason="undecodable"
    )


def _html_scripts(g: _Gen) -> None:
    inner = g.rng.choice(
        [
            "<script>alert(document.cookie)</script>",
            "<iframe src='http://evil.example/'></iframe>",
            "<style>body{display:none}</style>",
            "<script src='x.js'></script><noscript></noscript>",
        ]
    )
    g.add(
        "html_script_only",
        ".html",
        f"<html><head><title>T</title>{inner}</head><body>{inner * 3}</body></html>".encode(),
        reason="no article text",
    )


def _billion_laughs(g: _Gen) -> None:
    ents = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    head = f'<!DOCTYPE rss [<!ENTITY lol0 "lol">{ents}]>\n'
    g.add(
        "billion_laughs",
        ".xml",
        rss_feed(_item("Laughs", "&lol9;", "https://e.example/l"), head).replace(b"&amp;lol9;", b"&lol9;"),
        reason="declares XML entities",
    )


def _xxe(g: _Gen, secret_file: str) -> None:
    target = g.rng.choice([f"file://{secret_file}", "file:///etc/passwd"])
    head = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{target}">]>\n'
    g.add(
        "xxe",
        g.rng.choice([".xml", ".rss"]),
        rss_feed(_item("XXE", "see &xxe; here", "https://e.example/x"), head).replace(b"&amp;xxe;", b"&xxe;"),
        reason="declares XML entities",
    )


def _truncated_json(g: _Gen) -> None:
    full = json.dumps([g.synthetic("trunc") for _ in range(3)]).encode()
    g.add("truncated_json", ".json", full[: g.rng.randrange(5, len(full) - 5)], reason="malformed JSON")


def _wrong_types(g: _Gen) -> None:
    data = g.rng.choice(
        [
            {"title": "T", "body": ["a", "b"]},
            {"title": "T"},
            {"title": "T", "text": 42},
            "just a string",
            [1, 2, 3],
            {"title": "T", "body": {"nested": "x"}},
            [None],
        ]
    )
    g.add("wrong_types", ".json", json.dumps(data).encode(), reason="no text|expected a JSON object")


def _jsonl_mixed(g: _Gen) -> None:
    good = [g.synthetic("jsonl") for _ in range(2)]
    lines = [json.dumps(good[0]), '{"title": "broken", "body": ', json.dumps(good[1]), '{"title": "x"}']
    g.add(
        "jsonl_bad_lines",
        ".jsonl",
        "\n".join(lines).encode(),
        titles=[r["title"] for r in good],
        reason="malformed JSON line|no text",
    )


def _nul_bytes(g: _Gen) -> None:
    g.add("nul_bytes", ".txt", g.words(50).encode() + b"\x00" * 64 + g.words(50).encode(), reason="binary")


def _controls(g: _Gen) -> None:
    noise = "".join(chr(g.rng.choice([1, 2, 7, 8, 27, 31])) for _ in range(400))
    g.add("control_chars", ".txt", (g.words(30) + noise).encode(), reason="control characters|binary")


def _long_line(g: _Gen) -> None:
    g.add("long_line", ".txt", ("x" * 1_100_000).encode(), reason="too large")


def _huge_title(g: _Gen) -> None:
    title = "T" * (1 << 20) if g.rng.random() < 0.5 else g.words(20_000)
    g.add(
        "huge_title",
        ".json",
        json.dumps({"title": title, "body": g.words(60)}).encode(),
        reason="title too long",
    )


def _dup_ids(g: _Gen) -> None:
    first, second = g.synthetic("dup"), g.synthetic("dup")
    first["id"] = second["id"] = f"dup-{g.n}"
    g.add("dup_id_first", ".json", json.dumps(first).encode(), titles=[first["title"]])
    g.add(
        "dup_id_second", ".json", json.dumps(second).encode(), reason="already read from .* different content"
    )


def _big_number(g: _Gen) -> None:
    g.add(
        "big_number",
        ".json",
        b'{"title": "n", "body": "text", "published_at": ' + b"9" * 5000 + b"}",
        reason="too many digits",
    )


def _not_a_feed(g: _Gen) -> None:
    g.add(
        "not_a_feed",
        ".xml",
        b"<rss><channel><title>x</title></channel></rss>" if g.rng.random() < 0.5 else g.words(30).encode(),
        reason="feed has no entries",
    )


FAMILIES: list[Callable[[_Gen], None]] = [
    _binary,
    _magic,
    _empty,
    _whitespace_file,
    _whitespace_body,
    _deep_json_family,
    _invalid_utf8,
    _html_scripts,
    _billion_laughs,
    _truncated_json,
    _wrong_types,
    _jsonl_mixed,
    _nul_bytes,
    _controls,
    _long_line,
    _huge_title,
    _dup_ids,
    _big_number,
    _not_a_feed,
]


# --- hostile inputs that must still yield their article -------------------------------------------------
def _tolerated(g: _Gen) -> None:
    rec = g.synthetic("ok")
    kind = g.rng.choice(["utf16", "surrogate", "heading_spaces", "few_controls", "odd_name"])
    if kind == "utf16":  # UTF-16 saved without a byte-order mark
        g.add(
            "utf16_no_bom",
            ".txt",
            f"---\ntitle: {rec['title']}\n---\n{rec['body']}\n".encode("utf-16-le"),
            titles=[rec["title"]],
        )
    elif kind == "surrogate":  # lone surrogate escapes in JSON strings: replaced, not a crash
        data = json.dumps({**rec, "body": rec["body"] + " \\ud800 end"}).replace("\\\\ud800", "\\ud800")
        g.add("lone_surrogate", ".json", data.encode(), titles=[rec["title"]])
    elif kind == "heading_spaces":  # a Markdown heading followed by a long run of spaces (was cubic)
        title = rec["title"] + " " * 20_000 + "end"
        g.add(
            "heading_spaces", ".md", f"# {title}\n\n{rec['body']}\n".encode(), titles=[rec["title"] + " end"]
        )
    elif kind == "few_controls":  # a bell and an escape sequence in otherwise good text: dropped
        g.add(
            "few_controls",
            ".json",
            json.dumps({**rec, "body": "\x07\x1b[31m" + rec["body"]}).encode(),
            titles=[rec["title"]],
        )
    else:  # a file name that is not UTF-8
        from ingest.models import printable_path

        g.n += 1
        path = g.folder / os.fsdecode(b"%05d_odd_name_\xff\xfe.json" % g.n)
        path.write_bytes(json.dumps(rec).encode())
        g.files.append(Expect(path=printable_path(str(path)), family="odd_file_name", titles=[rec["title"]]))


def _singletons(g: _Gen, secret_file: str, big: bool, feed_items: int) -> None:
    """Inputs made once: links, a FIFO, a huge feed, a too-complex page and (full run) the 50 MB text."""
    for name, target, reason in [
        ("link_dev_zero", "/dev/zero", "not a regular file"),
        ("link_passwd", "/etc/passwd", "outside the folder"),
        ("link_secret", secret_file, "outside the folder"),
        ("link_dir", "/etc", "symbolic link to a folder"),
        ("link_broken", "/nonexistent/x.txt", "broken symbolic link"),
    ]:
        path = g.name(name, ".txt")
        path.symlink_to(target)
        g.files.append(Expect(path=str(path), family="symlink", reason=reason))
    fifo = g.name("fifo", ".txt")
    os.mkfifo(fifo)
    g.files.append(Expect(path=str(fifo), family="fifo", reason="not a regular file"))
    for _ in range(3):
        _xxe(g, secret_file)
    items = "".join(_item(f"Headline {i}", "", f"https://feed.example/{i}") for i in range(feed_items))
    g.add("rss_many_items", ".rss", rss_feed(items), reason="no text")
    g.add(
        "html_too_complex",
        ".html",
        b"<html><body><article>" + b"<div><b>a</b></div>" * 40_000 + b"</article></body></html>",
        reason="too complex",
    )
    if big:
        line = b"The quick brown fox jumps over the lazy dog while the council debates. "
        g.add("text_50mb", ".txt", line * (50_000_000 // len(line)), reason="too large")


# --- good articles from the MultiHop-RAG corpus, in several formats ------------------------------------
def _good(g: _Gen, records: list[dict]) -> None:
    writers = ["json", "jsonl", "md", "txt", "html", "rss", "json_list"]
    i = k = 0
    while i < len(records):
        kind, rec, k = writers[k % len(writers)], records[i], k + 1
        if kind == "json":
            g.add("good_json", ".json", json.dumps(rec).encode(), titles=[rec["title"]])
        elif kind in ("jsonl", "json_list"):
            pair = records[i : i + 2]
            data = ("\n".join(json.dumps(r) for r in pair) if kind == "jsonl" else json.dumps(pair)).encode()
            g.add(f"good_{kind}", f".{kind.split('_')[0]}", data, titles=[r["title"] for r in pair])
            i += len(pair) - 1
        elif kind in ("md", "txt"):
            front = "".join(f"{k}: {rec[k]}\n" for k in ("title", "source", "url", "published_at"))
            g.add(
                f"good_{kind}",
                f".{kind}",
                f"---\n{front}---\n{rec['body']}\n".encode(),
                titles=[rec["title"]],
            )
        elif kind == "html":
            paras = "".join(f"<p>{html.escape(p)}</p>" for p in rec["body"].split("\n") if p.strip())
            page = (
                f"<html><head><title>{html.escape(rec['title'])}</title><link rel='canonical' "
                f"href='{html.escape(rec['url'])}'><script>var x=1</script></head><body><nav>Home</nav>"
                f"<article><h1>{html.escape(rec['title'])}</h1>{paras}</article></body></html>"
            )
            g.add("good_html", ".html", page.encode(), titles=[rec["title"]])
        else:
            feed = rss_feed(_item(rec["title"], rec["body"], rec["url"]))
            g.add("good_rss", ".xml", feed, titles=[rec["title"]])
        i += 1


def _html_safe(title: str) -> bool:
    """Titles trafilatura keeps whole (it cuts site names after separators such as ` | ` or ` - `)."""
    return not re.search(r"[|–—:»·]| - ", title)


def generate(
    folder: Path, n_bad: int, n_good: int, big: bool = False, feed_items: int = 10_000, seed: int = 5
) -> Manifest:
    """Write `n_bad` hostile inputs (plus the singletons) and `n_good` corpus articles into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    secret_file = folder.parent / "secret.txt"
    secret_file.write_text(SECRET)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    good = sorted((r for r in corpus if _html_safe(r["title"])), key=lambda r: (len(r["body"]), r["url"]))
    rng = random.Random(seed)
    g = _Gen(folder, rng, re.findall(r"[A-Za-z]{3,}", " ".join(r["body"] for r in corpus[:50])))
    _singletons(g, str(secret_file), big, feed_items)
    families = [*FAMILIES, _tolerated, _tolerated]
    while len(g.files) < n_bad:
        families[g.n % len(families)](g)
    _good(g, good[:n_good])
    return Manifest(files=g.files, secret_file=str(secret_file))
