"""Chunk: split an article body into token-bounded, sentence-respecting passages with overlap.

Sizes are measured in tiktoken cl100k tokens, counted on each chunk's own text (special-token
strings such as `<|endoftext|>` count as plain text). Sentences are packed greedily into a chunk of
at most `size` tokens; the next chunk starts with the last sentences of the previous one that fit in
`overlap` tokens, as long as the next new sentence still fits beside them (so no chunk merely repeats
part of the one before). A sentence longer than a whole chunk is cut where tokens start, never inside
a character. Every chunk records its character span in the body, so `body[char_start:char_end] == text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ingest import tokens
from ingest.models import Article, Chunk

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and an
# opening capital, digit or quote; or at a blank line. Abbreviations and initials do not end sentences.
_ABBREV = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep",
    "rev", "inc", "ltd", "co", "corp", "vs", "etc", "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.g", "i.e",
])
_BOUNDARY = re.compile(r"(?<![.!?])[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])|\n\s*\n")
_LAST_WORD = re.compile(r"([\w.]+)$")


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    if match.group().startswith("\n") or not match.group().startswith("."):
        return True
    word = _LAST_WORD.search(text, max(0, match.start() - 12), match.start())
    if word is None:
        return True
    w = word.group(1).lower()
    return not (w in _ABBREV or (len(w) == 1 and w.isalpha()))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, whitespace excluded."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if not _is_boundary(text, match):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _count(text: str, start: int, end: int) -> int:
    return len(tokens.encoding().encode(text[start:end], disallowed_special=()))


def _cut(text: str, a: int, b: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, tokens) pieces of at most `size` tokens covering the over-long span text[a:b].

    Cuts fall where a token starts (mapped to characters, so a multi-byte character is never split);
    each piece is re-counted as the text it is, and shortened while it counts more than `size`.
    """
    enc = tokens.encoding()
    _, offsets = enc.decode_with_offsets(enc.encode(text[a:b], disallowed_special=()))
    cuts = sorted({a + o for o in offsets if 0 < o < b - a} | {b})
    pos, k = a, 0  # cuts[k] is the first cut after pos
    while pos < b:
        while cuts[k] <= pos:
            k += 1
        lo, hi = k, min(len(cuts) - 1, k + size - 1)  # each cut adds about one token: search for the last
        while lo < hi:  # cut whose piece still fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _count(text, pos, cuts[mid]) <= size else (lo, mid - 1)
        end = cuts[lo]
        while end > pos + 1 and _count(text, pos, end) > size:  # a lone cut that still counts too much
            end -= 1
        piece_end = end
        while piece_end > pos + 1 and text[piece_end - 1].isspace():
            piece_end -= 1
        yield pos, piece_end, _count(text, pos, piece_end)
        pos = end
        while pos < b and text[pos].isspace():
            pos += 1


def _pieces(text: str, size: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, tokens) of the sentences, with over-long sentences cut into <= size-token pieces."""
    for a, b in sentence_spans(text):
        n = _count(text, a, b)
        if n <= size:
            yield a, b, n
        else:
            yield from _cut(text, a, b, size)


def chunk_spans(text: str, size: int = 256, overlap: int = 32) -> list[tuple[int, int]]:
    """Character spans of the chunks of `text`."""
    pieces = list(_pieces(text, size))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j, used = i, 0
        while j < len(pieces) and (j == i or used + pieces[j][2] <= size):
            used += pieces[j][2]
            j += 1
        # the whitespace between sentences costs tokens too: shrink until the joined text fits
        while j > i + 1 and _count(text, pieces[i][0], pieces[j - 1][1]) > size:
            j -= 1
        end = pieces[j - 1][1]
        spans.append((pieces[i][0], end))
        if j >= len(pieces):
            break
        # carry trailing sentences (within `overlap` tokens, counted as the text they are) into the next
        # chunk, but only as many as leave room there for the next new sentence
        back = j
        while (back - 1 > i and _count(text, pieces[back - 1][0], end) <= overlap
               and _count(text, pieces[back - 1][0], pieces[j][1]) <= size):
            back -= 1
        i = back
    return spans


def chunk_id(article_id: str, content_hash: str, n: int) -> str:
    """The id of chunk `n` of an article version: the article id, the first 10 characters of the
    version's content hash, the chunk's number (so a version's chunk ids follow from its record)."""
    return f"{article_id}:{content_hash[:10]}:{n:04d}"


def chunk_article(article: Article, size: int = 256, overlap: int = 32) -> list[Chunk]:
    """The chunks of `article`, ids derived from the article id and its content hash."""
    chunks = []
    for n, (a, b) in enumerate(chunk_spans(article.body, size, overlap)):
        text = article.body[a:b]
        chunks.append(Chunk(
            id=chunk_id(article.id, article.content_hash, n), article_id=article.id, index=n, text=text,
            char_start=a, char_end=b, tokens=tokens.count(text),
        ))
    return chunks
