"""Question analysis on the real MultiHop-RAG catalog: outlets, dates, anchors, sub-queries, speakers."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import pytest

from assistant.query import Catalog, plan
from assistant.schema import Filters
from tests.conftest import DATA, corpus_records

QUERIES = DATA / "multihop-rag" / "queries-dev.json"
CNBC = "Cnbc | World Business News Leader"
FOX = ["FOX News - Entertainment", "FOX News - Health", "FOX News - Lifestyle"]
OCT5 = date(2023, 10, 5)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_records(corpus_records())


@pytest.fixture(scope="module")
def dev() -> list[dict]:
    return json.loads(QUERIES.read_text(encoding="utf-8"))


def dev_query(dev: list[dict], start: str) -> str:
    return next(q["query"] for q in dev if q["query"].startswith(start))


def test_catalog_is_built_from_the_corpus(catalog):
    assert len(catalog.sources) == 49 and CNBC in catalog.sources and "sports" in catalog.categories
    assert (catalog.oldest, catalog.newest) == (date(2023, 9, 26), date(2023, 12, 25))
    assert len(catalog.articles) == 609


@pytest.mark.parametrize("question", [
    "According to TechCrunch, what did OpenAI announce at its dev day?",
    "What did TechCrunch report about OpenAI's dev day?",
    "In TechCrunch's article on OpenAI's dev day, what was announced?",
    "Which articles from 'TechCrunch' cover OpenAI's dev day?",
    "What did techcrunch write about OpenAI?",
])
def test_one_outlet_in_explicit_phrasing_is_a_hard_filter(catalog, question):
    p = plan(question, catalog)
    assert p.filters.sources == ["TechCrunch"] and p.subqueries == []
    assert p.applied[0].startswith("source = TechCrunch (from '")


def test_according_to_note_quotes_the_phrase(catalog):
    p = plan("According to TechCrunch, what did OpenAI announce?", catalog)
    assert p.applied == ["source = TechCrunch (from 'According to TechCrunch')"]


@pytest.mark.parametrize("question", [
    "Which outlets other than TechCrunch covered OpenAI's dev day?",  # negated
    "Is TechCrunch biased about OpenAI?",  # named, but no restriction
    "According to TechCrunch and The Verge, what did OpenAI announce?",  # two outlets
    "According to TechCrunch and Forbes, what did OpenAI announce?",  # one of them not in the store
])
def test_no_hard_filter_without_one_explicit_outlet(catalog, question):
    p = plan(question, catalog)
    assert p.filters.sources == [] and "TechCrunch" in p.mentioned_sources


@pytest.mark.parametrize(("question", "since", "until", "phrase"), [
    ("What happened to FTX in October 2023?", date(2023, 10, 1), date(2023, 10, 31), "in October 2023"),
    ("What happened to FTX in October?", date(2023, 10, 1), date(2023, 10, 31), "in October"),
    ("Which games were played on October 5, 2023?", OCT5, OCT5, "on October 5, 2023"),
    ("Which games were played on October 5th?", OCT5, OCT5, "on October 5th"),
    ("What was reported on 5 October 2023?", OCT5, OCT5, "on 5 October 2023"),
    ("What was reported on 2023-10-05?", OCT5, OCT5, "on 2023-10-05"),
    ("Articles published at '2023-10-04T22:42:00+00:00'", date(2023, 10, 4), date(2023, 10, 4),
     "2023-10-04T22:42:00"),
    ("What happened between October 2, 2023 and October 7, 2023?", date(2023, 10, 2), date(2023, 10, 7),
     "between October 2, 2023 and October 7, 2023"),
    ("What has Polygon reviewed since November 1?", date(2023, 11, 1), None, "since November 1"),
    ("What was reported after October 5?", OCT5, None, "after October 5"),  # the day kept: time zones
    ("What was reported before October 5, 2023?", None, OCT5, "before October 5, 2023"),
    ("What was reported after October 2023?", date(2023, 11, 1), None, "after October 2023"),
    ("What was reported before November?", None, date(2023, 10, 31), "before November"),
    ("What was reported in 2023 about Messi?", date(2023, 1, 1), date(2023, 12, 31), "in 2023"),
    ("What happened this week in the NFL?", date(2023, 12, 19), date(2023, 12, 25), "this week"),
    ("What happened this month in the NFL?", date(2023, 12, 1), date(2023, 12, 25), "this month"),
])
def test_dates_read_from_the_question(catalog, question, since, until, phrase):
    p = plan(question, catalog)
    assert (p.filters.since, p.filters.until) == (since, until)
    assert len(p.applied) == 1 and f"(from '{phrase}" in p.applied[0]


def test_year_of_a_bare_month_follows_the_catalog_not_the_clock(catalog):
    next_year = dataclasses.replace(catalog, newest=date(2024, 1, 10))
    assert plan("What happened in October?", next_year).filters.since == date(2023, 10, 1)
    assert plan("What happened in January?", next_year).filters.since == date(2024, 1, 1)
    assert plan("What happened on December 30?", next_year).filters.until == date(2023, 12, 30)
    assert plan("What happened on January 5?", catalog).filters.is_empty()  # 2023-01-05: before the store


def test_event_dates_outside_the_store_are_no_filter(catalog):
    p = plan("How much did Google spend in 2021 to be the default search engine?", catalog)
    assert p.filters.is_empty() and p.applied == []


def test_latest_counts_back_from_the_newest_article(catalog):
    p = plan("What is the latest news about OpenAI?", catalog)
    assert p.latest and p.filters.since == date(2023, 12, 11) and p.filters.until is None
    assert p.applied == ["latest: since 2023-12-11 (newest article 2023-12-25)"]
    older = dataclasses.replace(catalog, newest=date(2023, 11, 30))
    assert plan("What are the most recent reports on Sam Altman?", older).filters.since == date(2023, 11, 16)


def test_latest_as_an_ordinary_word_is_not_a_filter(catalog):
    for question in ("Which company announced the latest product launch of Beats?", "Does the article from "
                     "Business Today | Latest Stock Market And Economy News India agree?"):
        p = plan(question, catalog)
        assert not p.latest and p.filters.since is None


def test_after_an_outlets_report_resolves_to_that_article(catalog):
    record = next(r for r in corpus_records() if r["source"] == "Sporting News"
                  and r["title"].startswith("Chicago Fire vs Inter Miami"))
    day = date.fromisoformat(record["published_at"][:10])
    p = plan("Which stories were published after the Sporting News report on Chicago Fire vs Inter Miami "
             "and Lionel Messi?", catalog)
    assert p.filters.since == day and p.filters.sources == []
    assert p.applied == [f"published after '{record['title']}' (Sporting News, {day}): since {day}"]
    missing = plan("Which stories were published after the Sporting News report on quantum chromodynamics?",
                   catalog)
    assert missing.filters.is_empty() and missing.applied == []


def test_two_outlets_with_their_own_dates_become_subqueries(catalog, dev):
    question = dev_query(dev, "Between the TechCrunch report on Sam Bankman-Fried's trial published on Oct")
    p = plan(question, catalog)
    assert p.filters.is_empty() and p.applied == []
    assert [(s.sources, s.since, s.until) for s in p.subqueries] == [
        (["TechCrunch"], date(2023, 10, 1), date(2023, 10, 1)),
        (["Fortune"], date(2023, 10, 4), date(2023, 10, 4))]
    first, second = (s.text for s in p.subqueries)
    assert first.startswith("TechCrunch report on Sam Bankman-Fried's trial published on October 1, 2023")
    assert second.startswith("Fortune report on the opening statements in the same trial")
    assert all("was there consistency in the portrayal" in s.text for s in p.subqueries)
    assert "Fortune" not in first and "TechCrunch" not in second


def test_one_outlet_twice_with_two_dates(catalog, dev):
    question = dev_query(dev, "Between the TechCrunch report on Sam Bankman-Fried's intentions with his")
    p = plan(question, catalog)
    assert [(s.since, s.until) for s in p.subqueries] == [(date(2023, 10, 2),) * 2, (date(2023, 10, 7),) * 2]
    assert p.filters.since is None and p.filters.until is None


def test_clauses_of_an_inference_question(catalog, dev):
    question = dev_query(dev, "Who is the subject of a criminal trial reported by TechCrunch, accused by")
    texts = {tuple(s.sources): s.text for s in plan(question, catalog).subqueries}
    assert texts[("Fortune",)].startswith("accused by Fortune of secretly accessing customer funds")
    assert "Alameda" not in texts[("The Verge",)] and "FTX" in texts[("The Verge",)]


def test_the_stem_between_clauses_is_shared(catalog, dev):
    question = dev_query(dev, "After the report by The Age on October 22, 2023, which maintained")
    subs = plan(question, catalog).subqueries
    assert [(s.sources[0], s.since) for s in subs] == [
        ("The Age", date(2023, 10, 22)), ("TechCrunch", date(2023, 11, 13)),
        ("TechCrunch", date(2023, 12, 15))]
    assert "manipulates Search" in subs[0].text and "manipulates Search" not in subs[1].text
    assert subs[2].text.startswith("TechCrunch article published on December 15, 2023, regarding the class")
    assert all(s.text.endswith("; was there consistency in the portrayal of Google's business practices")
               for s in subs)


def test_a_leading_date_stays_global_in_a_multi_outlet_question(catalog):
    p = plan("In October 2023, did TechCrunch and The Verge both cover Google's antitrust trial?", catalog)
    assert (p.filters.since, p.filters.until) == (date(2023, 10, 1), date(2023, 10, 31))
    assert sorted(s.sources[0] for s in p.subqueries) == ["TechCrunch", "The Verge"]


@pytest.mark.parametrize(("question", "sources"), [
    ("What did CNBC report about Binance?", [CNBC]),
    (f"What did {CNBC} report about Binance?", [CNBC]),
    ("What did Fox News report about Taylor Swift?", FOX),
    ("What did FOX News - Health report about sleep?", ["FOX News - Health"]),
    ("What did 'The Verge' report about Valve?", ["The Verge"]),
    ("In the Guardian's article on Chelsea, who scored?", ["The Guardian"]),
])
def test_outlet_names_quotes_possessives_and_aliases(catalog, question, sources):
    assert plan(question, catalog).filters.sources == sources


def test_aliases_come_from_the_catalog(catalog):
    store = dataclasses.replace(catalog, sources=("Acme Daily | Your Town's Paper", "The Herald - Sport"))
    assert plan("What did Acme Daily report?", store).filters.sources == ["Acme Daily | Your Town's Paper"]
    assert plan("According to the Herald, who won?", store).filters.sources == ["The Herald - Sport"]


def test_ordinary_words_are_not_outlets(catalog):
    p = plan("Did Britney Spears have control over her privacy at the age of 16, and did she make a fortune?",
             catalog)
    assert p.mentioned_sources == [] and p.unknown_sources == []


def test_unknown_outlets_are_reported_and_known_ones_are_not(catalog):
    p = plan("Considering a Forbes article and a Bloomberg report on Apple, a TechCrunch piece and a "
             "New York Times story, what did the Wall Street Journal add?", catalog)
    assert p.unknown_sources == ["Forbes", "Bloomberg", "The Wall Street Journal"]
    assert p.mentioned_sources == ["TechCrunch", "The New York Times"]


@pytest.mark.parametrize(("question", "speaker", "topic"), [
    ("What did Qureshi say about Russia?", "Qureshi", "Russia"),
    ("What has Sam Bankman-Fried said about Caroline Ellison?", "Sam Bankman-Fried", "Caroline Ellison"),
    ("What were Jerome Powell's comments on interest rates?", "Jerome Powell", "interest rates"),
    ("How did Megan Grey describe Google's search practices?", "Megan Grey", "Google's search practices"),
    ("According to Megan Grey in 'The Age', does Google manipulate search?", "Megan Grey", None),
    ("What did Qureshi say?", "Qureshi", None),
    ("What did TechCrunch say about Google?", None, None),
    ("What did the CEO say about layoffs?", None, None),
])
def test_speaker_and_topic(catalog, question, speaker, topic):
    p = plan(question, catalog)
    assert (p.speaker, p.topic) == (speaker, topic)


def test_explicit_filters_win(catalog):
    explicit = Filters(sources=["The Verge"], since=date(2023, 11, 1), categories=["technology"])
    p = plan("According to TechCrunch, what happened in October 2023?", catalog, explicit)
    assert p.filters == Filters(sources=["The Verge"], since=date(2023, 11, 1), categories=["technology"])
    assert p.applied == []
    only_sources = plan("According to TechCrunch, what happened in October 2023?", catalog,
                        Filters(sources=["The Verge"]))
    assert only_sources.filters.since == date(2023, 10, 1) and len(only_sources.applied) == 1


def test_a_plain_question_has_no_plan(catalog):
    p = plan("Who won the Rugby World Cup final?", catalog)
    assert p.filters.is_empty() and p.subqueries == [] and p.applied == []
    assert (p.mentioned_sources, p.unknown_sources, p.speaker, p.latest) == ([], [], None, False)


def test_dev_set_outlets(catalog, dev):
    """Gold evidence outlets named in the question, over every answerable dev query (0.935 measured: the
    misses are outlets the question never names); no stored outlet is ever called unknown."""
    answerable = [q for q in dev if q["question_type"] != "null_query"]
    plans = {q["query"]: plan(q["query"], catalog) for q in dev}
    covered = sum({e["source"] for e in q["evidence_list"]} <= set(plans[q["query"]].mentioned_sources)
                  for q in answerable)
    assert all(not set(p.unknown_sources) & set(catalog.sources) for p in plans.values())
    nulls = [q for q in dev if q["question_type"] == "null_query"]
    flagged = sum(bool(plans[q["query"]].unknown_sources) for q in nulls)
    print(f"\ngold outlets named: {covered}/{len(answerable)} = {covered / len(answerable):.3f}; "
          f"null queries naming an unknown outlet: {flagged}/{len(nulls)} = {flagged / len(nulls):.3f}")
    assert covered / len(answerable) >= 0.92


def test_dev_set_subquery_dates_hit_the_gold_article(catalog, dev):
    """A sub-query's dates admit a gold article of its outlet (0.979 measured; the rest are the dataset's
    own slips: "October 23" for an article stored on the 22nd in UTC, "September 30" for October 30)."""
    hits = total = 0
    for q in dev:
        gold = [(e["source"], date.fromisoformat(e["published_at"][:10])) for e in q["evidence_list"]]
        for sub in plan(q["query"], catalog).subqueries:
            if sub.since or sub.until:
                total += 1
                hits += any(src in sub.sources and (sub.since or date.min) <= day <= (sub.until or date.max)
                            for src, day in gold)
    assert total > 150 and hits / total >= 0.95


def test_latest_window_constant(catalog):
    p = plan("What's the latest on the Eagles?", catalog)
    assert catalog.newest and p.filters.since == catalog.newest - timedelta(days=14)
