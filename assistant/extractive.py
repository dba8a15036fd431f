"""Extractive: the offline answerer — the passages' own best sentences, each cited, or a refusal.

Every sentence of the retrieved passages is scored by the question words it contains, weighted
by their rarity in the store (BM25's idf). The answer takes the best sentences — for a multi-hop
question the best one of each article the question needs, for "what did X say" X's own quoted
and reported statements first — in reading order per article, each followed by its [n].

It refuses when the passages do not cover the question: `coverage` is the idf-weighted share of the
question's words found anywhere in the top passages; below the threshold (calibrated on the
MultiHop-RAG dev queries, see README), or when the question names outlets the store does not hold,
the answer is the refusal sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.cite import REFUSAL
from assistant.lexical import tokenize
from assistant.retrieve import Retrieval
from assistant.schema import Passage
from assistant.sentences import news_sentences, split_sentences
from ingest.quoteindex import QuoteIndex
from ingest.quotes import speaker_matches

# Words that say what kind of question it is rather than what it is about.
_QUESTION_WORDS = frozenset(tokenize(
    "what which who whom whose when where why how did does do is was were are has have had "
    "say said says according report reported article articles published news story "
    "mention mentioned discuss discussed between both also consider considering based information "
    "about above after again against all any because before being below can could during each few from "
    "further into just more most no nor not only other over own same should some such than that then "
    "there these they this those through under until very while with would your yes whether either "
    "regarding concerning per via within without whose whom"
))


_FILTER_WORDS = frozenset(tokenize(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec 2019 2020 2021 2022 2023 2024 2025 2026 "
    "latest recent recently newest week month year today yesterday"
))


@dataclass
class Extract:
    text: str  # the answer with [n] markers (n = 1-based position in the passages)
    refused: bool
    coverage: float
    reason: str = ""


@dataclass
class Extractive:
    idf: dict[str, float]
    quotes: QuoteIndex | None = None
    threshold: float = 0.6  # coverage below this → refuse (calibrated on the dev queries, see README)
    max_sentences: int = 4

    def __post_init__(self) -> None:
        # a word the store never saw is as rare as the rarest word it has
        self.unseen_idf = max(self.idf.values(), default=1.0)

    def weights(self, text: str, context: str = "") -> dict[str, float]:
        """Question words by rarity; words only in `context` (earlier turns) count half."""
        words = [w for w in tokenize(text) if w not in _QUESTION_WORDS]
        out = {w: self.idf.get(w, self.unseen_idf) for w in dict.fromkeys(words)}
        for w in tokenize(context):
            if w not in _QUESTION_WORDS and w not in out:
                out[w] = 0.5 * self.idf.get(w, self.unseen_idf)
        return out

    def coverage(self, question: str, passages: list[Passage], context: str = "") -> float:
        weights = self.weights(question, context)
        if not weights:
            return 0.0
        seen: set[str] = set()
        for p in passages:
            seen.update(tokenize(f"{p.title} {p.source} {p.text}"))
        return sum(w for t, w in weights.items() if t in seen) / sum(weights.values())

    def answer(self, question: str, retrieval: Retrieval, context: str = "", compose: bool = True) -> Extract:
        """Answer `question` from the retrieved passages; `context` is the text of earlier turns.
        `compose=False`: only decide whether to refuse (text "" unless refused) — what a model's answer
        needs before it is asked; the sentences are picked later only if the model's answer falls back."""
        passages = retrieval.passages
        plan = retrieval.plan
        if plan.unknown_sources:  # part of what the question rests on is not in the store
            names = ", ".join(plan.unknown_sources)
            return Extract(f"{REFUSAL} (The store has no articles from {names}.)", True, 0.0,
                           "unknown outlet")
        if not passages:
            return Extract(REFUSAL, True, 0.0, "no passages match")
        cover = self.coverage(question, passages, context)
        if cover < self.threshold:
            return Extract(REFUSAL, True, cover, f"coverage {cover:.2f} < {self.threshold}")
        picked = self._speaker_sentences(plan.speaker, passages) if plan.speaker else []
        if picked and plan.topic:
            topic = set(tokenize(plan.topic)) - _QUESTION_WORDS
            need = len(topic) if len(topic) <= 2 else -(-2 * len(topic) // 3)  # all, or two thirds
            picked = [x for x in picked if _matches(topic, set(tokenize(x[2]))) >= need]
            if not picked:  # the speaker is quoted, but never on this topic
                return Extract(f"{REFUSAL} (No statement by {plan.speaker} about {plan.topic} was found.)",
                               True, cover, "speaker never quoted on the topic")
        if not compose and not picked:
            return Extract("", False, cover)
        picked = picked or self._best_sentences(question, passages, len(plan.subqueries), context)
        return Extract(_compose(picked, passages), False, cover)

    def _speaker_sentences(self, speaker: str, passages: list[Passage]) -> list[tuple[int, int, str]]:
        """(passage index, position, sentence) of sentences where the speaker is quoted or reported."""
        out: dict[str, tuple[int, int, str]] = {}
        quotes = self.quotes.find(speaker) if self.quotes is not None else []
        for n, p in enumerate(passages):
            for article_id, q in quotes:
                if article_id != p.article_id or not (p.char_start <= q.start < p.char_end):
                    continue
                sentence = q.sentence or q.text
                pos = p.text.find(sentence)
                if pos >= 0 and speaker_matches(speaker, q.speaker):
                    out.setdefault(sentence, (n, pos, sentence))
        return list(out.values())[: self.max_sentences + 2]

    def _best_sentences(self, question: str, passages: list[Passage], hops: int,
                        context: str = "") -> list[tuple[int, int, str]]:
        weights = self.weights(question, context)
        for word in _FILTER_WORDS | {w for p in passages for w in tokenize(p.source)}:
            weights.pop(word, None)  # dates and outlets select the passages; they say nothing of the answer
        scored: list[tuple[float, int, int, str]] = []
        for n, p in enumerate(passages):
            for sentence in news_sentences(p.text):  # never an instruction planted in an article
                words = set(tokenize(sentence))
                if sentence.rstrip(' "”’').endswith("?") or len(words) < 5:
                    continue  # a question or a fragment (a byline, a tweet's signature) answers nothing
                score = sum(w for t, w in weights.items() if t in words)
                novel = len(words - weights.keys())  # what the sentence adds beyond the question's words
                if score > 0:
                    score *= min(novel, 12) / 12
                    scored.append((score / (1 + 0.002 * len(sentence)), n, p.text.find(sentence), sentence))
        scored.sort(key=lambda x: -x[0])
        want = max(2, min(self.max_sentences, hops or 2))
        picked: list[tuple[int, int, str]] = []
        articles: set[str] = set()
        for score, n, pos, sentence in scored:  # the best sentence of distinct articles, none weak
            if score < 0.5 * scored[0][0]:
                break
            if passages[n].article_id not in articles:
                articles.add(passages[n].article_id)
                picked.append((n, pos, sentence))
            if len(picked) >= want:
                break
        return picked


def _matches(wanted: set[str], words: set[str]) -> int:
    """How many wanted words the sentence has, a word also matching its longer forms (afghan/afghanistan)."""
    return sum(any(w == t or (min(len(w), len(t)) >= 5 and (w.startswith(t) or t.startswith(w)))
                   for t in words) for w in wanted)


def _compose(picked: list[tuple[int, int, str]], passages: list[Passage]) -> str:
    """Sentences grouped by passage in retrieval order, each passage's in reading order, cited [n]."""
    by_passage: dict[int, list[tuple[int, str]]] = {}
    for n, pos, sentence in picked:
        by_passage.setdefault(n, []).append((pos, sentence))
    parts: list[str] = []
    for n in sorted(by_passage):
        for _, sentence in sorted(by_passage[n]):
            # a multi-sentence quote is cited after each of its sentences, so each one is verified
            parts.extend(f"{part} [{n + 1}]" for part in split_sentences(_clean(sentence)))
    return " ".join(parts)


def _clean(sentence: str) -> str:
    # a footnote like "[3]" in the article must not read as one of our citations
    return re.sub(r"\[(\d+)\]", r"(\1)", re.sub(r"\s+", " ", sentence)).strip()
