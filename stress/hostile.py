"""Stress: hostile input files mixed with good articles, ingested by the real CLI (issue 5).

`generate(folder, n_bad, n_good)` writes hostile inputs across many families (binary, empty, whitespace,
deep JSON, invalid UTF-8, script-only HTML, billion laughs, XXE, huge titles, duplicate ids, symlinks,
FIFOs, 10k-item feeds, a 50 MB text…) and good MultiHop-RAG articles in several formats, and returns a
manifest: for each file the titles it must yield and, for a bad one, a regex its failure reasons match.
`check(manifest, report, titles, bodies)` lists every way the run fell short of it.

    /tmp/venv/bin/python stress/hostile.py [--quick] [--bad N] [--good N]

The full run ingests the folder with `python -m assistant.cli ingest DIR --json` in a subprocess (timeout,
peak RSS from RUSAGE_CHILDREN). Progress on stderr; the last stdout line is one JSON object; exit 1 when
a check failed.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
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


def _rss(items: str, head: str = "") -> bytes:
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
        _rss(_item("Laughs", "&lol9;", "https://e.example/l"), head).replace(b"&amp;lol9;", b"&lol9;"),
        reason="declares XML entities",
    )


def _xxe(g: _Gen, secret_file: str) -> None:
    target = g.rng.choice([f"file://{secret_file}", "file:///etc/passwd"])
    head = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{target}">]>\n'
    g.add(
        "xxe",
        g.rng.choice([".xml", ".rss"]),
        _rss(_item("XXE", "see &xxe; here", "https://e.example/x"), head).replace(b"&amp;xxe;", b"&xxe;"),
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
    g.add("rss_many_items", ".rss", _rss(items), reason="no text")
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
            g.add(
                "good_rss", ".xml", _rss(_item(rec["title"], rec["body"], rec["url"])), titles=[rec["title"]]
            )
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


# --- checking a run against the manifest ----------------------------------------------------------------
def _norm(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip()


def _owner(path: str, known: dict[str, Expect]) -> Expect | None:
    """The manifest entry of a failure path (`file`, `file#3` item, `file:7` line)."""
    for candidate in (path, path.rsplit("#", 1)[0], path.rsplit(":", 1)[0]):
        if candidate in known:
            return known[candidate]
    return None


def check(manifest: Manifest, failures: list[dict], stored: list[tuple[str, str]]) -> list[str]:
    """Every way a run fell short: `failures` as the report's, `stored` as (title, body) of the store."""
    known = {e.path: e for e in manifest.files}
    problems, seen = [], Counter[str]()
    for failure in failures:
        owner = _owner(failure["path"], known)
        if owner is None or owner.reason is None:
            problems.append(f"unexpected failure: {failure['path']}: {failure['error']}")
        elif not re.search(owner.reason, failure["error"], re.I):
            problems.append(f"{owner.family}: reason does not name the problem: {failure['error']!r}")
        if owner is not None:
            seen[owner.path] += 1
    titles = {_norm(t) for t, _ in stored}
    for e in manifest.files:
        if e.reason is not None and not seen[e.path]:
            problems.append(f"{e.family}: bad input not reported: {e.path}")
        problems.extend(
            f"{e.family}: article missing from the store: {t!r}" for t in e.titles if _norm(t) not in titles
        )
    for title, body in stored:
        if SECRET in body or SECRET in title or "root:x:0:0" in body:
            problems.append(f"a local file's content reached the store (XXE or link): {title!r}")
    return problems


def stored_articles(data_dir: Path) -> list[tuple[str, str]]:
    """(title, body) of every article in the store under `data_dir` (the minilm-l3 collections)."""
    from assistant.embed import embedder_key
    from assistant.settings import Settings
    from assistant.store import Store, make_client

    settings = Settings(data_dir=data_dir, embedder="minilm-l3")
    store = Store(make_client(settings), embedder_key(settings), settings.collection_prefix)
    return [(meta.get("title", ""), body or "") for _, meta, body in store.all_records(include_body=True)]


def run_cli(folder: Path, data_dir: Path, timeout: float) -> tuple[dict, float, float]:
    """(report, wall seconds, peak RSS MB of the child) of `newsqa ingest folder --json`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update(NEWSQA_DATA_DIR=str(data_dir), NEWSQA_EMBEDDER="minilm-l3", PYTHONPATH=str(ROOT))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.monotonic() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"ingest exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, rss_mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="~300 hostile + 20 good, no 50 MB file (< 1 min)")
    ap.add_argument("--bad", type=int, default=None)
    ap.add_argument("--good", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--rss-limit-mb", type=float, default=1536)
    args = ap.parse_args()
    n_bad, n_good = (args.bad or (300 if args.quick else 1200)), (args.good or (20 if args.quick else 110))
    with tempfile.TemporaryDirectory(prefix="newsqa-hostile-") as tmp:
        folder = Path(tmp) / "inputs"
        t0 = time.monotonic()
        manifest = generate(
            folder, n_bad, n_good, big=not args.quick, feed_items=1000 if args.quick else 10_000
        )
        gen_s = time.monotonic() - t0
        bad = [e for e in manifest.files if e.reason is not None]
        print(
            f"generated {len(manifest.files)} inputs ({len(bad)} bad) in {gen_s:.1f}s; ingesting…",
            file=sys.stderr,
        )
        report, wall, rss_mb = run_cli(folder, Path(tmp) / "data", args.timeout)
        stored = stored_articles(Path(tmp) / "data")
    problems = check(manifest, report["failed"], stored)
    if rss_mb > args.rss_limit_mb:
        problems.append(f"peak RSS {rss_mb:.0f} MB over the {args.rss_limit_mb:.0f} MB bound")
    reasons = Counter(re.sub(r"[\d,]+", "N", f["error"])[:90] for f in report["failed"])
    for line in problems[:40]:
        print("PROBLEM:", line, file=sys.stderr)
    print(
        json.dumps(
            {
                "ok": not problems,
                "inputs": len(manifest.files),
                "bad_inputs": len(bad),
                "good_articles_expected": sum(len(e.titles) for e in manifest.files),
                "families": manifest.by_family(),
                "report": {
                    k: report[k]
                    for k in ("added", "updated", "unchanged", "duplicates", "articles", "chunks")
                },
                "failures": len(report["failed"]),
                "top_reasons": dict(reasons.most_common(25)),
                "problems": problems[:40],
                "n_problems": len(problems),
                "generate_s": round(gen_s, 1),
                "ingest_wall_s": round(wall, 1),
                "peak_rss_mb": round(rss_mb),
                "rss_limit_mb": args.rss_limit_mb,
            }
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT)]
    sys.exit(main())
