"""Markup: an answer is plain text with [n] citations — links to anything but the cited articles' own
urls, images, reference-link definitions, HTML tags and scripts are removed (see `strip_links`), so a
model obeying an article's "visit evil.example" or echoing its markup sends a reader nowhere."""

from __future__ import annotations

import re

from assistant.sentences import MARKER_RUN

_MD_LINK = re.compile(  # [text](target "title"), any scheme, one level of nested ()
    r"\[([^\]\n]*)\]\(\s*<?((?:[^()\s<>]|\([^()\s]*\))+)>?(?:\s+[\"'][^\"'\n]*[\"'])?\s*\)")
_MD_IMAGE = re.compile(r"[ \t]*!\[[^\]\n]*\]\((?:[^()\n]|\([^()\n]*\))*\)")
_REF_DEFINITION = re.compile(r"^[ \t]*\[[^\]\n]+\]:[ \t]*\S.*(?:\n|$)", re.MULTILINE)
_HTML_BLOCK = re.compile(r"<(script|style|iframe|object|embed)\b[^>]*>.*?(?:</\1\s*>|$)", re.I | re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_RAW_URL = re.compile(r"[ \t]*<?((?:https?://|www\.)[^\s<>()\[\]\"']+)>?")


def url_key(url: str) -> str:
    return url.strip().split("#")[0].rstrip("/").lower()


def strip_links(text: str, keep: set[str]) -> str:
    """Markdown links to urls not in `keep` become their text; raw urls not in `keep` are removed; so are
    images, reference-link definitions, HTML tags and scripts (an answer is plain text with citations)."""
    text = _HTML_TAG.sub("", _HTML_BLOCK.sub("", text))
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(lambda m: m.group(0) if url_key(m.group(2)) in keep else m.group(1), text)
    text = _REF_DEFINITION.sub("", text)

    def raw(match: re.Match[str]) -> str:
        url = match.group(1).rstrip(".,;:!?")
        return match.group(0) if url_key(url) in keep else match.group(1)[len(url):]

    text = _RAW_URL.sub(raw, text)
    return re.sub(r"[ \t]*\(\s*\)", "", text)


def plain_claim(sentence: str) -> str:
    """The claim of a sentence: markers removed, links reduced to their text, urls dropped."""
    return _RAW_URL.sub(" ", _MD_LINK.sub(r"\1", MARKER_RUN.sub(" ", sentence)))
