"""Quote index: the quotes of many articles, found by a speaker's name as a question asks it.

Saved as JSON Lines, one article per line. Loaded, each article's quotes stay in the file (an article's
line is read by its offsets, with pread) until a search needs them — only the speakers' names are read up
front: at 100k chunks the 44k quotes held as objects cost 76 MB and most of the index's load time; at 1M
chunks even the lines held as strings took 311 MB, and reading them through a memory map mapped 145 MB of
the file into the process (the kernel maps 64 KB around each touched page).
"""

from __future__ import annotations

import json
import os
import sys
import weakref
from pathlib import Path

from assistant.schema import Quote
from ingest.quotes import _name_tokens, speaker_matches


class QuoteIndex:
    """Quotes by article, in the order articles were first added; found by a speaker's name."""

    def __init__(self) -> None:
        self._quotes: dict[str, list[Quote] | tuple[int, int]] = {}  # parsed, or its line's span in _saved
        self._saved: int | None = None  # the descriptor of the file loaded from
        self._speakers: dict[str, list[str]] = {}  # each article's quotes' speakers, in order
        self._by_name: _NameIndex | None = None  # built when first searched, dropped on every change

    def add(self, article_id: str, quotes: list[Quote]) -> None:
        """Set an article's quotes (replacing any it had; it keeps its place in the order)."""
        ordered = sorted(quotes, key=lambda q: (q.start, q.end))
        self._quotes[article_id] = ordered
        self._speakers[article_id] = [q.speaker for q in ordered]
        self._by_name = None

    def remove(self, article_id: str) -> None:
        """Forget an article's quotes (nothing happens for an unknown article)."""
        self._quotes.pop(article_id, None)
        self._speakers.pop(article_id, None)
        self._by_name = None

    def quotes(self, article_id: str) -> list[Quote]:
        """An article's quotes in text order (parsed from its saved line the first time)."""
        held = self._quotes.get(article_id, [])
        if isinstance(held, tuple):
            line = json.loads(self._line(held))
            held = self._quotes[article_id] = [Quote.model_validate(q) for q in line["quotes"]]
        return held

    def find(self, asked_name: str) -> list[tuple[str, Quote]]:
        """(article_id, quote) for each quote whose speaker the name refers to, in article then text order.

        Only speakers sharing a name word with the asked name are compared (a match always shares one),
        so a search does not scan every quote of the store."""
        if self._by_name is None:
            self._by_name = _NameIndex(self._speakers)
        return [(aid, self.quotes(aid)[m]) for aid, m in self._by_name.find(asked_name)]

    def speakers(self) -> set[str]:
        return {s for names in self._speakers.values() for s in names}

    def article_ids(self) -> list[str]:
        return list(self._quotes)

    def __len__(self) -> int:
        """The number of quotes held, over all articles."""
        return sum(len(names) for names in self._speakers.values())

    def lines(self) -> list[str]:
        """One JSON line per article: {"id": ..., "quotes": [...]} (a saved line is kept as it was)."""
        return [self._line(held).decode("utf-8") if isinstance(held, tuple) else self.line(aid, held)
                for aid, held in self._quotes.items()]

    @staticmethod
    def line(article_id: str, quotes: list[Quote]) -> str:
        """An article's line in the saved file, its quotes in text order (a build writes these as it
        goes, rather than holding every article's quotes: ~0.7 GB of objects at 1M chunks)."""
        ordered = sorted(quotes, key=lambda q: (q.start, q.end))
        return json.dumps({"id": article_id, "quotes": [q.model_dump() for q in ordered]}, ensure_ascii=False)

    def _line(self, span: tuple[int, int]) -> bytes:
        assert self._saved is not None  # spans come only from a loaded file
        return os.pread(self._saved, span[1] - span[0], span[0])

    def save(self, path: Path) -> None:
        path.write_text("".join(f"{line}\n" for line in self.lines()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> QuoteIndex:
        """From `save`'s JSON Lines; each line is checked whole (a torn file raises) but left in the file."""
        index = cls()
        start = 0
        with path.open("rb") as f:
            for line in f:
                article = json.loads(line)
                aid = str(article["id"])
                index._quotes[aid] = (start, start + len(line.rstrip(b"\n")))
                index._speakers[aid] = [sys.intern(str(q["speaker"])) for q in article["quotes"]]
                start += len(line)
            index._saved = os.dup(f.fileno())
        weakref.finalize(index, os.close, index._saved)
        return index


class _NameIndex:
    """Speakers by name word, and each speaker's quotes as (article order, quote number, article id)."""

    def __init__(self, speakers: dict[str, list[str]]) -> None:
        self.by_word: dict[str, set[str]] = {}
        self.by_speaker: dict[str, list[tuple[int, int, str]]] = {}
        for n, (article_id, names) in enumerate(speakers.items()):
            for m, speaker in enumerate(names):
                if speaker not in self.by_speaker:
                    for word in _name_tokens(speaker):
                        self.by_word.setdefault(word, set()).add(speaker)
                self.by_speaker.setdefault(speaker, []).append((n, m, article_id))

    def find(self, asked: str) -> list[tuple[str, int]]:
        speakers = set().union(*(self.by_word.get(w, set()) for w in _name_tokens(asked)))
        hits = sorted(hit for s in speakers if speaker_matches(asked, s) for hit in self.by_speaker[s])
        return [(article_id, m) for _, m, article_id in hits]
