"""Chunker: token bounds checked against tiktoken itself, exact spans, overlap, coverage, sentences."""

from __future__ import annotations

import itertools

import pytest
from conftest import corpus_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import tokens
from ingest.chunk import chunk_article, chunk_spans, sentence_spans
from ingest.formats import article_from_record
from ingest.models import Article


def oracle_count(text: str) -> int:
    """tiktoken's own count (the encoding is loaded offline through ingest.tokens first)."""
    import tiktoken

    tokens.encoding()  # seeds tiktoken's cache from the bundled file; no network
    return len(tiktoken.get_encoding("cl100k_base").encode(text, disallowed_special=()))


def check_chunking(body: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Assert every chunking invariant for `body`; return the spans."""
    spans = chunk_spans(body, size, overlap)
    assert spans, "a non-empty body has at least one chunk"
    for start, end in spans:
        assert 0 <= start < end <= len(body)
        assert oracle_count(body[start:end]) <= size, (size, body[start:end][:80])
        assert body[start:end] == body[start:end].strip(), "chunks do not begin or end with whitespace"
    # consecutive chunks: each moves forward, adds new text, overlaps by at most `overlap` tokens
    # and leaves no gap with anything but whitespace in it
    for (a1, b1), (a2, b2) in itertools.pairwise(spans):
        assert a2 > a1 and b2 > b1
        if a2 < b1:
            assert oracle_count(body[a2:b1]) <= overlap, (overlap, body[a2:b1])
        else:
            assert not body[b1:a2].strip(), f"text between chunks is lost: {body[b1:a2]!r}"
    assert not body[: spans[0][0]].strip() and not body[spans[-1][1] :].strip()
    # sentences: every one lies inside some chunk, unless it is longer than a chunk; then its
    # pieces are all covered and only such a sentence is ever cut
    sentences = sentence_spans(body)
    for a, b in sentences:
        if oracle_count(body[a:b]) <= size:
            assert any(s <= a and b <= e for s, e in spans), f"sentence split or lost: {body[a:b]!r}"
        else:
            covered = sorted((max(a, s), min(b, e)) for s, e in spans if s < b and e > a)
            reach = a
            for s, e in covered:
                assert not body[reach:s].strip()
                reach = max(reach, e)
            assert reach == b
    starts, ends = {a for a, _ in sentences}, {b for _, b in sentences}
    long_sentences = [(a, b) for a, b in sentences if oracle_count(body[a:b]) > size]
    for s, e in spans:
        assert s in starts or any(a < s < b for a, b in long_sentences), "chunk starts mid-sentence"
        assert e in ends or any(a < e < b for a, b in long_sentences), "chunk ends mid-sentence"
    return spans


def make_article(body: str, **extra: str) -> Article:
    return Article(id="a1", title=extra.get("title", "T"), body=body, source=extra.get("source", "S"))


REAL = [article_from_record(r, f"corpus#{i}") for i, r in enumerate(corpus_records()[::12])]


def test_real_corpus_bodies_default_settings():
    assert len(REAL) >= 50
    for article in REAL:
        chunks = chunk_article(article, 256, 32)
        check_chunking(article.body, 256, 32)
        assert [c.index for c in chunks] == list(range(len(chunks)))
        for c in chunks:
            assert c.tokens == oracle_count(c.text) <= 256
            assert article.body[c.char_start : c.char_end] == c.text
            assert c.id == f"{article.id}:{article.content_hash[:10]}:{c.index:04d}"
        assert len({c.id for c in chunks}) == len(chunks)


@pytest.mark.parametrize(("size", "overlap"), [(64, 16), (40, 0), (128, 100)])
def test_real_corpus_bodies_other_sizes(size, overlap):
    for article in REAL[:20]:
        check_chunking(article.body, size, overlap)


def test_chunks_are_packed_and_overlap_is_used():
    counts, boundaries, overlapping = [], 0, 0
    for article in REAL:
        spans = chunk_spans(article.body, 256, 32)
        counts += [oracle_count(article.body[a:b]) for a, b in spans[:-1]]
        boundaries += len(spans) - 1
        overlapping += sum(1 for (_, b1), (a2, _) in itertools.pairwise(spans) if a2 < b1)
    counts.sort()
    assert counts[len(counts) // 2] > 220, "greedy packing fills chunks, not one sentence each"
    assert overlapping > boundaries / 2, "trailing sentences are carried into the next chunk"
    body = " ".join(f"Sentence number {i} is short." for i in range(60))  # 7 tokens each
    spans = check_chunking(body, 64, 16)
    assert all(oracle_count(body[a2:b1]) >= 7 for (_, b1), (a2, _) in itertools.pairwise(spans))


def test_no_chunk_only_repeats_its_predecessor():
    # 14, 10, 26 tokens: after chunk 1 (A+B) the carried B cannot share a chunk with C, so the
    # next chunk must start at C rather than repeat B alone
    a = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu."
    b = "Short one here now and then some more words."
    c = ("This sentence is rather long and has many many words in it to make it long enough for us "
         "and more words to go on.")
    assert [oracle_count(x) for x in (a, b, c)] == [14, 10, 26]
    body = f"{a} {b} {c}"
    spans = check_chunking(body, 32, 16)
    assert [body[s:e] for s, e in spans] == [f"{a} {b}", c]


def test_abbreviations_do_not_end_sentences():
    body = ("Mr. Smith met Dr. Jones of the U.S. Army on Jan. 5 in St. Louis. They talked for an hour. "
            "Gov. Hochul said the U.K. and the U.N. agreed, e.g. on trade. J. R. Doe left on Sept. 3. "
            "Was it over? Yes! \"It is,\" she said. Then it rained.")
    got = [body[a:b] for a, b in sentence_spans(body)]
    assert got == [
        "Mr. Smith met Dr. Jones of the U.S. Army on Jan. 5 in St. Louis.",
        "They talked for an hour.",
        "Gov. Hochul said the U.K. and the U.N. agreed, e.g. on trade.",
        "J. R. Doe left on Sept. 3.",
        "Was it over?",
        "Yes!",
        "\"It is,\" she said.",
        "Then it rained.",
    ]
    spans = check_chunking(body, 32, 8)
    for s, e in spans:
        assert not body[s:e].endswith(("Mr.", "Dr.", "U.S.", "Jan.", "St.", "Gov.", "J."))


def test_blank_lines_end_sentences():
    body = "A heading without a stop\n\nThe first paragraph. It has two sentences.\n\n\nLast line"
    assert [body[a:b] for a, b in sentence_spans(body)] == [
        "A heading without a stop", "The first paragraph.", "It has two sentences.", "Last line"]


def test_special_token_text_is_chunked_as_plain_text():
    body = ("The model emitted <|endoftext|> in the middle. " * 30 + "Then <|fim_prefix|> too.").strip()
    article = make_article(body)
    chunks = chunk_article(article, 40, 8)
    check_chunking(body, 40, 8)
    assert any("<|endoftext|>" in c.text for c in chunks)
    assert all(c.tokens == oracle_count(c.text) for c in chunks)


@pytest.mark.parametrize("body", [
    "x" * 5000,
    "😀" * 700,
    "日本語のテキストです" * 120,
    "naïve café " * 200 + "done.",
    "https://example.com/" + "a/b-c_d" * 400 + " is a long url.",
])
def test_sentences_longer_than_a_chunk_are_cut_within_the_limit(body):
    spans = check_chunking(body, 48, 8)
    assert len(spans) > 1


_WORDS = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["Mr.", "U.S.", "Jan.", "The", "end.", "Yes!", "Why?", "<|endoftext|>", "\n\n", "\n",
                     "😀", "é", "said.", "A", "\"Quote.\"", "3.5", "(Aside.)", "co."]),
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(_WORDS, min_size=1, max_size=150), size=st.integers(8, 96), overlap=st.integers(0, 95))
def test_chunking_invariants_hold_for_any_text(words, size, overlap):
    body = " ".join(words).strip()
    if not body:
        return
    check_chunking(body, size, min(overlap, size - 1))
