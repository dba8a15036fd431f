"""Read: turn paths, folders, globs and URLs into articles, reporting each bad input with its reason.

Detects the format from the extension or, for a URL, the content type (sniffing the content when
neither tells), decodes text (UTF-8, UTF-16 with BOM, else Latin-1/cp1252 when it looks like text)
and hands it to the parser in `ingest.textfmt` / `ingest.formats`. Never raises for bad input:
failures are returned. A folder is read recursively, skipping hidden files and folders.
"""

from __future__ import annotations

import glob
import http.client
import os
import re
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from ingest import netguard
from ingest.formats import (
    BadInput,
    Parsed,
    parse_feed,
    parse_html,
    parse_json,
    parse_jsonl,
    validation_message,
)
from ingest.models import MAX_BODY_CHARS, Failure
from ingest.textfmt import parse_text

_EXT = {
    ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".json": "json", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".xml": "feed", ".rss": "feed", ".atom": "feed",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_NON_ASCII, _SPACE = re.compile(r"[^\x00-\x7f]"), re.compile(r"\s")
_CTYPE = {
    "application/json": "json", "application/x-ndjson": "jsonl", "text/html": "html",
    "application/xhtml+xml": "html", "application/rss+xml": "feed", "application/atom+xml": "feed",
    "application/xml": "feed", "text/xml": "feed", "text/markdown": "markdown",
}
_JSON_START = re.compile(rb'\[\s*[\[{"\]0-9-]|\[\s*$|\{\s*["}]|\{\s*$')
_SAMPLE = 1 << 19
_TEXT_LIMIT = 2 * MAX_BODY_CHARS  # a text file this long is no single article (front matter included)
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"\x7fELF")


def _looks_like_text(text: str, legacy: bool) -> bool:
    """Few control characters; for a legacy 8-bit guess, also mostly ASCII (random high bytes are not).
    A long text is judged on its first and last 256K characters (bounded time and memory)."""
    if len(text) > _SAMPLE:
        text = text[: _SAMPLE // 2] + text[-_SAMPLE // 2 :]
    if len(_CONTROL.findall(text)) > max(2, len(text) // 200):
        return False
    if not legacy:
        return True
    visible = len(text) - len(_SPACE.findall(text))
    return len(_NON_ASCII.findall(text)) <= 0.3 * visible


def _decode_legacy(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined (0x81, 0x8d, ...)
        return data.decode("latin-1")


def _bomless_utf16(data: bytes) -> str | None:
    """"le"/"be" for UTF-16 text saved without a byte-order mark (mostly ASCII: every other byte NUL)."""
    head = data[:4096]
    if len(head) < 8 or len(head) % 2 or data.startswith(_BINARY_MAGIC):
        return None
    even, odd = head[0::2].count(0) / (len(head) // 2), head[1::2].count(0) / (len(head) // 2)
    if odd > 0.7 and even < 0.05:
        return "le"
    if even > 0.7 and odd < 0.05:
        return "be"
    return None


def decode_text(data: bytes) -> str:
    """Decode bytes that hold text; raise BadInput naming why they don't."""
    if not data.strip():
        raise BadInput("empty input" if not data else "input holds only whitespace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise BadInput(f"undecodable UTF-16 text at byte {err.start}") from err
        if not _looks_like_text(text, legacy=False):
            raise BadInput("binary file, not text (UTF-16 byte-order mark but no readable text)")
        return text
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if (encoding := _bomless_utf16(data)) is not None:
        return decode_text((b"\xff\xfe" if encoding == "le" else b"\xfe\xff") + data)
    if data.startswith(_BINARY_MAGIC) or b"\x00" in data[:8192]:
        raise BadInput("binary file, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as utf8_err:
        text = _decode_legacy(data)
        if not _looks_like_text(text, legacy=True):
            raise BadInput(
                f"undecodable bytes: not UTF-8 (invalid byte 0x{data[utf8_err.start]:02x} at offset "
                f"{utf8_err.start}) and not Latin-1/cp1252 text"
            ) from utf8_err
        return text
    if not _looks_like_text(text, legacy=False):
        raise BadInput("binary file, not text (too many control characters)")
    return text


def sniff(data: bytes) -> str:
    """The format of content that has no telling extension: json, jsonl, feed, html or text."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if _JSON_START.match(head):
        return "jsonl" if head[:1] == b"{" and b"}\n{" in data[:1 << 20].replace(b"\r", b"") else "json"
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf")):
        return "html" if b"<html" in head else "feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    return "text"


def parse_bytes(data: bytes, origin: str, name: str, fmt: str | None = None, url: str = "") -> Parsed:
    """Articles from one input's bytes. Raises BadInput when the whole input is unusable."""
    if not data.strip():
        raise BadInput("empty input" if not data else "input holds only whitespace")
    fmt = fmt or sniff(data)
    if fmt == "feed":
        if data.startswith(_BINARY_MAGIC):
            raise BadInput("binary file, not a feed")
        return parse_feed(data, origin, name)
    text = decode_text(data)
    if fmt == "json" and sniff(data) == "jsonl":  # JSON Lines saved as .json
        fmt = "jsonl"
    if fmt == "json":
        return parse_json(text, origin, name)
    if fmt == "jsonl":
        return parse_jsonl(text, origin, name)
    if fmt == "html":
        return parse_html(text, origin, name, url)
    if len(text) > _TEXT_LIMIT:
        raise BadInput(f"text too large for one article ({len(text):,} characters, limit {_TEXT_LIMIT:,}; "
                       f"an article body is limited to {MAX_BODY_CHARS:,})")
    try:
        return [parse_text(text, name, origin, markdown=fmt == "markdown", url=url)], []
    except ValidationError as err:  # e.g. nothing left after the headers, or a bad front-matter id
        raise BadInput(validation_message(err)) from err


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """At most `max_bytes` of a regular file (never blocks on a FIFO or device swapped in for it)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput("not a regular file")
        if info.st_size > max_bytes:
            raise BadInput(f"file too large ({info.st_size} bytes, limit {max_bytes})")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadInput(f"file too large (over {max_bytes} bytes, limit {max_bytes})")
    return data


def read_file(path: Path, max_bytes: int) -> Parsed:
    """Articles from one local file; a file that cannot be read or parsed becomes a failure."""
    try:
        data = _read_bounded(path, max_bytes)
        return parse_bytes(data, str(path), path.stem, _EXT.get(path.suffix.lower()))
    except BadInput as err:
        return [], [Failure(path=str(path), error=str(err))]
    except OSError as err:
        return [], [Failure(path=str(path), error=f"cannot read: {err.strerror or err}")]
    except (RecursionError, MemoryError) as err:
        return [], [Failure(path=str(path), error=f"cannot parse: structure too deep or too large "
                                                   f"({type(err).__name__})")]
    except Exception as err:  # a parser library's bug must cost this file only, never the whole run
        return [], [Failure(path=str(path), error=f"cannot parse: unexpected {type(err).__name__}: {err}")]


def _url_format(url: str, ctype: str) -> str | None:
    """The format a response's content type names, else its URL's extension; None means sniff."""
    if ctype in _CTYPE:
        return _CTYPE[ctype]
    suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
    return _EXT.get(suffix) or ("text" if ctype == "text/plain" else None)


def fetch_url(url: str, timeout: float, max_bytes: int, allow_private: bool = True) -> Parsed:
    """Articles from one http(s) URL; HTTP errors, timeouts and bad content become failures.
    Without `allow_private`, hosts on loopback/private/link-local addresses are refused (`netguard`)."""
    request = urllib.request.Request(url, headers={"User-Agent": "newsqa/0.1 (+ingest)"})
    try:
        with netguard.opener(allow_private).open(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
            ctype = response.headers.get_content_type()
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and len(data) < min(int(declared), max_bytes + 1):
                raise http.client.IncompleteRead(data, int(declared) - len(data))
    except urllib.error.HTTPError as err:
        return [], [Failure(path=url, error=f"cannot fetch: HTTP {err.code} {err.reason}")]
    except http.client.HTTPException as err:  # a bad status line, truncated body, over-long header...
        problem = f"{type(err).__name__}: {err}"
        return [], [Failure(path=url, error=f"cannot fetch: malformed HTTP response ({problem})")]
    except (urllib.error.URLError, TimeoutError, ValueError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        return [], [Failure(path=url, error=f"cannot fetch: {reason}")]
    if len(data) > max_bytes:
        return [], [Failure(path=url, error=f"response too large (over {max_bytes} bytes)")]
    name = url.rstrip("/").rsplit("/", 1)[-1] or url
    try:
        return parse_bytes(data, url, name, _url_format(url, ctype), url=url)
    except BadInput as err:
        return [], [Failure(path=url, error=str(err))]


def _entry_problem(entry: os.DirEntry[str], root: Path) -> str | None:
    """Why a folder entry is not read (None: read it). Symbolic links are followed only to regular
    files inside the folder, so a folder cannot make ingest read /etc/passwd or /dev/zero."""
    if not entry.is_symlink():
        return None if entry.is_file(follow_symlinks=False) else "not a regular file"
    target = Path(os.path.realpath(entry.path))
    if not target.exists():
        return "broken symbolic link (its target does not exist)"
    if target.is_dir():
        return f"symbolic link to a folder ({target}): not followed"
    if not target.is_file():
        return f"not a regular file (symbolic link to {target})"
    if not target.is_relative_to(root):
        return f"symbolic link to a file outside the folder ({target}): not followed"
    return None


def _listing(folder: str) -> list[os.DirEntry[str]] | Failure:
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as err:
        return Failure(path=folder, error=f"cannot read folder: {err.strerror or err}")


def _folder_files(folder: Path) -> Iterator[Path | Failure]:
    """Files under a folder, recursively, in path order, skipping hidden files and folders (.git,
    .cache…); entries that are not read (devices, FIFOs, links leading out) come back as failures."""
    root = Path(os.path.realpath(folder))
    stack: list[Iterator[str | os.DirEntry[str]]] = [iter([os.path.join(folder, "")])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, str) or item.is_dir(follow_symlinks=False):
            listing = _listing(item if isinstance(item, str) else item.path)
            if isinstance(listing, Failure):
                yield listing
            else:
                stack.append(iter(listing))
        elif (problem := _entry_problem(item, root)) is not None:
            yield Failure(path=item.path, error=problem)
        else:
            yield Path(item.path)


def expand(target: str) -> Iterator[Path | str | Failure]:
    """The files a path, folder (recursive, hidden entries skipped) or glob names; URLs pass through."""
    if target.startswith(("http://", "https://")):
        yield target
        return
    path = Path(target)
    if path.is_dir():
        found = False
        for item in _folder_files(path):
            found = True
            yield item
        if not found:
            yield Failure(path=target, error="folder holds no files to read (hidden ones are skipped)")
    elif path.is_file():
        yield path
    elif path.exists():
        yield Failure(path=target, error="not a regular file")
    elif glob.has_magic(target):
        files = [m for m in sorted(Path(p) for p in glob.glob(target, recursive=True)) if m.is_file()]
        if not files:
            yield Failure(path=target, error="no file matches this pattern")
        yield from files
    else:
        yield Failure(path=target, error="no such file or directory")


def read_path(path: Path, max_bytes: int = 64 << 20) -> Parsed:
    """Articles from one local file (convenience for scripts and tests)."""
    return read_file(Path(path), max_bytes)


def read_inputs(targets: list[str], timeout: float = 20.0, max_bytes: int = 64 << 20,
                allow_private: bool = True) -> Iterator[Parsed]:
    """Parse each input in turn, yielding (articles, failures) per file or URL (each file once)."""
    seen: set[Path] = set()
    for target in targets:
        for item in expand(target):
            if isinstance(item, Path):
                if (key := item.resolve()) not in seen:
                    seen.add(key)
                    yield read_file(item, max_bytes)
            elif isinstance(item, Failure):
                yield [], [item]
            else:
                yield fetch_url(item, timeout, max_bytes, allow_private)
