"""Quote attribution: the seed article's speakers, the patterns, name matching, the index, the corpus."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.schema import Quote
from ingest.quoteindex import QuoteIndex
from ingest.quotes import extract_quotes, speaker_matches
from tests.conftest import SEED, corpus_records


@pytest.fixture(scope="module")
def seed_body() -> str:
    return SEED.read_text(encoding="utf-8").split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def seed_quotes(seed_body: str) -> list[Quote]:
    return extract_quotes(seed_body)


def by(quotes: list[Quote], name: str) -> list[Quote]:
    return [q for q in quotes if speaker_matches(name, q.speaker)]


def one(quotes: list[Quote], start: str) -> Quote:
    found = [q for q in quotes if q.text.startswith(start)]
    assert len(found) == 1, (start, quotes)
    return found[0]


def check_offsets(body: str, quotes: list[Quote]) -> None:
    for q in quotes:
        assert 0 <= q.start < q.end <= len(body)
        assert body[q.start : q.end] == q.text
        assert q.text in q.sentence and q.sentence in body
        assert q.speaker.strip() and len(q.speaker.split()) <= 6
        assert q.kind in ("direct", "reported")
    assert [q.start for q in quotes] == sorted(q.start for q in quotes)


# --- the seed article ---------------------------------------------------------------------------------


def test_seed_offsets_are_exact(seed_body: str, seed_quotes: list[Quote]) -> None:
    assert seed_quotes
    check_offsets(seed_body, seed_quotes)


def test_seed_qureshi_reported_resolve(seed_quotes: list[Quote]) -> None:
    q = one(by(seed_quotes, "Qureshi"), "Pakistan's resolve")
    assert q.kind == "reported"
    assert q.text == "Pakistan's resolve to build a strong multifaceted relationship with Russia"
    assert q.sentence.startswith("Speaking on the occasion, Qureshi reiterated")


def test_seed_he_added_goes_to_qureshi_not_lavrov(seed_quotes: list[Quote]) -> None:
    q = one(seed_quotes, "There is a new approach and mindset in Pakistan for a relationship with Russia")
    assert q.kind == "direct"
    assert speaker_matches("Qureshi", q.speaker) and not speaker_matches("Lavrov", q.speaker)
    assert q.text.endswith("the region and the world at large")  # both sentences: one quote
    assert q.sentence.endswith('," he added.')


def test_seed_lavrov_quotes(seed_quotes: list[Quote]) -> None:
    lavrov = by(seed_quotes, "Sergei Lavrov")
    serves = one(lavrov, "This serves in the interest of all states of the region")
    agreed = one(lavrov, "Russia and Pakistan have agreed to further facilitate the agreement among Afghan "
                         "parties through inclusive political dialogue")
    assert serves.kind == agreed.kind == "direct"
    assert agreed.sentence.endswith("he said.")  # "He showed concern ..." in between: still Lavrov
    assert not by(lavrov, "Qureshi") and not by(lavrov, "Khan")


def test_seed_khan_reiterated_that_quote(seed_quotes: list[Quote]) -> None:
    q = one(by(seed_quotes, "Khan"), "the importance Pakistan attaches")
    assert q.kind == "direct"
    assert q.text == ("the importance Pakistan attaches to its relations with Russia as a key foreign policy "
                      "priority")
    assert speaker_matches("Imran Khan", q.speaker)


def test_seed_bare_title_resolves_to_the_titled_person(seed_quotes: list[Quote]) -> None:
    q = one(seed_quotes, "the increase in bilateral trade")  # "The visiting Foreign Minister said …"
    assert q.kind == "reported" and speaker_matches("Lavrov", q.speaker)
    q = one(seed_quotes, "Islamabad's resolve to expeditiously conclude")  # "The Prime Minister reaffirmed"
    assert speaker_matches("Imran Khan", q.speaker)


# --- patterns ------------------------------------------------------------------------------------------


def attributed(body: str) -> list[tuple[str, str, str]]:
    quotes = extract_quotes(body)
    check_offsets(body, quotes)
    return [(q.speaker, q.text, q.kind) for q in quotes]


@pytest.mark.parametrize(("body", "expected"), [
    ('"We will win," said Lavrov.', [("Lavrov", "We will win", "direct")]),
    ('"Talks are over," Lavrov told reporters.', [("Lavrov", "Talks are over", "direct")]),
    ("“Rates fall,” Treasury Secretary Janet Yellen said.", [("Janet Yellen", "Rates fall", "direct")]),
    ("‘We were unlucky,’ said Gareth Southgate.", [("Gareth Southgate", "We were unlucky", "direct")]),
    ('"It was hard. We won!" Smith says.', [("Smith", "It was hard. We won!", "direct")]),
    ('Speaking in Berlin, Olaf Scholz said: "Europe must stand together."',
     [("Olaf Scholz", "Europe must stand together.", "direct")]),
    ('According to Ursula von der Leyen, "the deal is done."',
     [("Ursula von der Leyen", "the deal is done.", "direct")]),
    ('"It hurts," said former Denmark forward Peter Schmeichel. "We must respond."',
     [("Peter Schmeichel", "It hurts", "direct"), ("Peter Schmeichel", "We must respond.", "direct")]),
    ('"Talks are over," the Kremlin said.', [("Kremlin", "Talks are over", "direct")]),
    ("Mr. John Smith said that the deal was off.", [("John Smith", "the deal was off", "reported")]),
    ("Prices rose faster than expected in March, Christine Lagarde said.",
     [("Christine Lagarde", "Prices rose faster than expected in March", "reported")]),
])
def test_attribution_patterns(body: str, expected: list[tuple[str, str, str]]) -> None:
    assert attributed(body) == expected


@pytest.mark.parametrize("body", [
    "Markets were calm on Tuesday and trading was light.",
    'The sign on the door read "No entry".',
    '"We take privacy seriously," the company said.',
    "The statement said the plan was final and would not change.",
    "Officials said the bridge would reopen next week after repairs.",
    "",
])
def test_no_named_speaker_no_quote(body: str) -> None:
    assert extract_quotes(body) == []


def test_she_said_goes_to_the_woman_not_the_man_before_her() -> None:
    body = ('Sergei Lavrov arrived first. Maria Zakharova said the talks were useful and would continue. '
            '"We are ready," she said. "It is a good day," he added.')
    assert attributed(body) == [
        ("Maria Zakharova", "the talks were useful and would continue", "reported"),
        ("Maria Zakharova", "We are ready", "direct"),
        ("Sergei Lavrov", "It is a good day", "direct"),
    ]


def test_pronoun_without_any_named_person_is_dropped() -> None:
    assert extract_quotes('"Nobody told us anything," she said.') == []


def test_appositive_and_later_pronoun() -> None:
    body = ('Jane Smith, the company’s chief executive, said profits rose sharply in March.\n\n'
            '"We had a great quarter," she said.')
    assert [q.speaker for q in extract_quotes(body)] == ["Jane Smith", "Jane Smith"]


PIECES = ['"', "“", "”", "‘", "’", "'", ",", ".", "!", "?", ":", "\n", "\n\n", "said", "says", "added",
          "told", "he", "she", "they", "Lavrov", "Mr.", "A.J.", "al-Sisi", "Foreign", "Minister", "CEO",
          "the", "The", "Kremlin", "according to", "that", "of", "reporters", "We", "won", "’s",
          "bin", "É", "—", "(", ")"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join))
def test_any_text_gives_exact_offsets(body: str) -> None:
    check_offsets(body, extract_quotes(body))


# --- speaker_matches -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("asked", "speaker", "match"), [
    ("Qureshi", "Shah Mahmood Qureshi", True),
    ("shah mahmood qureshi", "Qureshi", True),
    ("sergei lavrov", "Lavrov", True),
    ("Lavrov's", "Sergei Lavrov", True),
    ("Lavrov’s", "Lavrov", True),
    ("Mr. Lavrov", "Sergei Lavrov", True),
    ("Imran Khan", "Khan", True),
    ("Pelé", "Pele", True),
    ("Lavrov", "Qureshi", False),
    ("Sergei", "Lavrov", False),
    ("", "Lavrov", False),
    ("Lavrov", "", False),
])
def test_speaker_matches(asked: str, speaker: str, match: bool) -> None:
    assert speaker_matches(asked, speaker) is match


# --- QuoteIndex ----------------------------------------------------------------------------------------


def quote(speaker: str, text: str, start: int) -> Quote:
    end = start + len(text)
    return Quote(speaker=speaker, text=text, start=start, end=end, sentence=f'"{text}," she said.')


def test_index_add_find_replace_remove() -> None:
    index = QuoteIndex()
    index.add("a1", [quote("Sergei Lavrov", "late", 50), quote("Qureshi", "mid", 9),
                     quote("Lavrov", "soon", 5)])
    index.add("a2", [quote("Lavrov", "other", 0)])
    assert len(index) == 4 and index.article_ids() == ["a1", "a2"]
    assert index.speakers() == {"Sergei Lavrov", "Qureshi", "Lavrov"}
    found = [(aid, q.text) for aid, q in index.find("lavrov's")]
    assert found == [("a1", "soon"), ("a1", "late"), ("a2", "other")]
    index.add("a1", [quote("Qureshi", "new", 1)])  # replaces, keeps its place
    assert len(index) == 2 and index.article_ids() == ["a1", "a2"]
    assert [q.text for _, q in index.find("Lavrov")] == ["other"]
    index.remove("a2")
    index.remove("never-added")
    assert index.article_ids() == ["a1"] and index.find("Lavrov") == []


def test_index_saved_and_loaded_lazily(seed_quotes: list[Quote], tmp_path) -> None:
    index = QuoteIndex()
    index.add("seed", seed_quotes)
    index.add("other", [quote("Christine Lagarde", "Rates stay high", 3)])
    index.save(tmp_path / "quotes.jsonl")
    again = QuoteIndex.load(tmp_path / "quotes.jsonl")
    assert all(isinstance(held, tuple) for held in again._quotes.values())  # nothing parsed yet: spans
    assert again.article_ids() == index.article_ids() and len(again) == len(index) == len(seed_quotes) + 1
    assert again.speakers() == index.speakers()
    assert again.lines() == index.lines()
    for name in ("Qureshi", "Lavrov", "Khan", "Lagarde"):
        assert again.find(name) == index.find(name) != []
    assert isinstance(again._quotes["seed"], list)  # parsed when a search needed it
    assert again.lines() == index.lines()
    again.add("other", [quote("Lagarde", "Cuts later", 9)])
    assert [q.text for _, q in again.find("Lagarde")] == ["Cuts later"]
    (tmp_path / "torn.jsonl").write_text(index.lines()[0][:-5] + "\n")
    with pytest.raises(json.JSONDecodeError):
        QuoteIndex.load(tmp_path / "torn.jsonl")
    (tmp_path / "unended.jsonl").write_text("\n".join(index.lines()))  # no final newline: still read
    assert QuoteIndex.load(tmp_path / "unended.jsonl").lines() == index.lines()
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert len(QuoteIndex.load(tmp_path / "empty.jsonl")) == 0


# --- the real corpus -----------------------------------------------------------------------------------


def test_corpus_extraction_is_sane() -> None:
    kinds = {"direct": 0, "reported": 0}
    for record in corpus_records():
        quotes = extract_quotes(record["body"])
        check_offsets(record["body"], quotes)
        for q in quotes:
            kinds[q.kind] += 1
    assert kinds["direct"] > 1000 and kinds["reported"] > 200  # it does find the corpus's speech


def test_find_by_name_word_equals_comparing_every_quote():
    index = QuoteIndex()
    for n, record in enumerate(corpus_records()[:120]):
        index.add(f"a{n}", extract_quotes(record["body"]))
    index.add("a3", extract_quotes(corpus_records()[200]["body"]))  # replaced: keeps its place
    index.remove("a5")
    every = [(aid, q) for aid in index.article_ids() for q in index.quotes(aid)]
    asked = [*sorted(index.speakers())[:60], "Biden's", "mr. musk", "Sam", "nobody-at-all", "", "The"]
    for name in asked:
        assert index.find(name) == [(aid, q) for aid, q in every if speaker_matches(name, q.speaker)], name
    assert sum(bool(index.find(name)) for name in asked) >= 60
