"""Retrieval over a real Chroma store of 16 real articles from 11 outlets and the seed, embedded once with
minilm-l3: ranking, filters, speakers, multi-hop, dense side, indexes in step with the store, the CLI."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import bm25s
import numpy as np
import pytest
from conftest import SEED, cli_env, corpus_records, run_cli, write_articles
from hypothesis import given
from hypothesis import strategies as st

from assistant.embed import Embedder
from assistant.indexes import Indexes
from assistant.lexical import LexicalIndex, tokenize
from assistant.query import LATEST_DAYS
from assistant.retrieve import Retrieval, Retriever, Tuning
from assistant.schema import Filters, Passage
from assistant.sentence_scores import SentenceView, candidates
from assistant.settings import Settings
from assistant.store import Store, make_client
from ingest.pipeline import ingest

TITLES = (  # title prefixes of the corpus articles in the module's store
    "Beeper Mini is back", "Early impressions of Google", "Norway seeks to extend ban", "10 Minute School",
    "The new, ‘efficient’ Spotify", "Discogs’ vibrant vinyl", "Inter Miami season tickets",
    "Browns survive Bears", "Can Alabama make College", "Travis Kelce faces backlash",
    "Billie Jean King sees", "Craft beer and cheese", "Ten Hag responds to Carra",
    "Manchester divided as ten Hag", "How to wake Art Cullagh", "ASX set to open lower",
)
TEN_HAG, BEEPER = "What was reported about Erik ten Hag and Manchester United?", "Beeper Mini's iMessage"


def rec(prefix: str) -> dict:
    found = [r for r in corpus_records() if r["title"].startswith(prefix)]
    assert len(found) == 1, prefix
    return found[0]


def day(p: Passage) -> date:
    return datetime.fromisoformat(p.published_at).astimezone(UTC).date()


@dataclass
class World:
    settings: Settings
    store: Store
    embedder: Embedder
    indexes: Indexes
    titles: dict[str, str]  # article id -> title

    def id(self, prefix: str) -> str:
        return next(i for i, t in self.titles.items() if t.startswith(prefix))

    def ask(self, question: str, k: int = 10, filters: Filters | None = None,
            tuning: Tuning | None = None) -> Retrieval:
        result = Retriever(self.store, self.embedder, self.indexes, tuning).retrieve(question, k, filters)
        scores = [p.score for p in result.passages]
        assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores), scores
        assert len({p.chunk_id for p in result.passages}) == len(result.passages) <= k
        return result


@pytest.fixture(scope="module")
def world(tmp_path_factory, small_embedder):
    root = tmp_path_factory.mktemp("retrieve")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("NEWSQA_")]:
            mp.delenv(key)
        mp.chdir(root)  # no stray .env is read
        settings = Settings(data_dir=root / "data", embedder="minilm-l3")
        store = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
        articles = write_articles(root / "articles.json", [rec(t) for t in TITLES])
        report = ingest([str(articles), str(SEED)], store, small_embedder, settings)
        assert (report.added, report.failed) == (len(TITLES) + 1, [])
        titles = {i: m["title"] for i, m, _ in store.all_records()}
        yield World(settings, store, small_embedder, Indexes.open(store, settings.data_dir), titles)


def test_a_distinctive_sentence_finds_its_article_first_with_its_metadata(world):
    beeper = rec("Beeper Mini is back")
    result = world.ask("Which app climbed into the top 20 in the Play Store's charts and saw over 100,000 "
                       "downloads in its first 48 hours?")
    top = result.passages[0]
    assert (top.article_id, top.title, top.source, top.url, top.category) == (
        world.id("Beeper Mini"), beeper["title"], "TechCrunch", beeper["url"], "technology")
    assert datetime.fromisoformat(top.published_at) == datetime.fromisoformat(beeper["published_at"])
    assert "100,000 downloads in its first 48 hours" in top.text
    assert top.text == world.store.body(top.article_id)[top.char_start: top.char_end]
    assert len(result.passages) == 10 and len({p.article_id for p in result.passages}) > 1


def _in(since: date | None = None, until: date | None = None, category: str | None = None, sources=()):
    """A test that a passage is inside these filters."""
    return lambda p: ((since is None or day(p) >= since) and (until is None or day(p) <= until)
                      and category in (None, p.category) and (not sources or p.source in sources))


@pytest.mark.parametrize(("question", "filters", "allowed"), [
    (TEN_HAG, Filters(sources=["Sporting News", "Fortune"]), _in(sources=("Sporting News", "Fortune"))),
    (TEN_HAG, Filters(since=date(2023, 12, 1)), _in(since=date(2023, 12, 1))),
    (BEEPER, Filters(until=date(2023, 11, 30)), _in(until=date(2023, 11, 30))),
    (BEEPER, Filters(categories=["business"]), _in(category="business")),
    (TEN_HAG, Filters(since=date(2023, 10, 1), until=date(2023, 10, 31), categories=["entertainment"]),
     _in(date(2023, 10, 1), date(2023, 10, 31), "entertainment")),
], ids=["sources", "since", "until", "category", "month-and-category"])
def test_explicit_filters_restrict_every_passage(world, question, filters, allowed):
    assert not all(map(allowed, world.ask(question).passages))  # the filter has something to remove
    passages = world.ask(question, filters=filters).passages
    assert passages and all(map(allowed, passages))


@pytest.mark.parametrize("filters", [
    Filters(sources=["No Such Outlet"]), Filters(categories=["astrology"]), Filters(since=date(2030, 1, 1)),
    Filters(since=date(2023, 11, 1), until=date(2023, 10, 1)), Filters(until=date(2000, 1, 1)),
])
def test_an_impossible_filter_gives_no_passages(world, filters):
    result = world.ask("What did Qureshi say about Russia?", filters=filters)
    assert (result.passages, result.allowed) == ([], 0)


def test_an_outlet_named_in_the_question_restricts_to_it(world):
    result = world.ask("According to TechCrunch, what mistakes did Google's Gemini Pro make?")
    report = result.filters_report()
    assert report["sources"] == ["TechCrunch"] and "TechCrunch" in " ".join(report["from_question"])
    assert {p.source for p in result.passages} == {"TechCrunch"} and len(result.passages) == 10
    assert result.passages[0].article_id == world.id("Early impressions of Google")
    roar = world.ask("According to The Roar, is Erik ten Hag under pressure at Manchester United?")
    assert roar.filters_report()["sources"] == ["The Roar | Sports Writers Blog"]
    assert {p.article_id for p in roar.passages} == {world.id("Manchester divided")}


def test_a_month_in_the_question_restricts_dates(world):
    assert world.id("Manchester divided") in {p.article_id for p in world.ask(TEN_HAG).passages}
    result = world.ask("What was reported in October 2023 about Erik ten Hag and Manchester United?")
    report = result.filters_report()
    assert (report["since"], report["until"]) == ("2023-10-01", "2023-10-31")
    assert "October 2023" in " ".join(report["from_question"])
    assert result.passages and all(map(_in(date(2023, 10, 1), date(2023, 10, 31)), result.passages))
    assert result.passages[0].article_id == world.id("Ten Hag responds to Carra")


def test_latest_counts_back_from_the_newest_article_not_today(world):
    newest = max(datetime.fromisoformat(rec(t)["published_at"]).date() for t in TITLES)
    assert world.indexes.catalog.newest == newest == date(2023, 12, 23)
    result = world.ask("What is the latest news about Erik ten Hag and Manchester United?")
    since = newest - timedelta(days=LATEST_DAYS)
    assert result.plan.latest and result.filters_report()["since"] == since.isoformat()
    assert result.passages and all(map(_in(since=since), result.passages))
    assert result.passages[0].article_id == world.id("Manchester divided")
    assert world.id("Ten Hag responds to Carra") not in {p.article_id for p in result.passages}


def test_one_long_article_takes_at_most_per_article_places(world):
    question, discogs, cap = "Discogs vinyl record marketplace sellers and collectors", world.id("Discogs"), 5
    assert Tuning().per_article == cap
    uncapped = Counter(p.article_id for p in world.ask(question, tuning=Tuning(per_article=100)).passages)
    assert uncapped[discogs] > cap  # this article alone would fill the top 10
    passages = world.ask(question, k=10).passages
    counts = Counter(p.article_id for p in passages)
    assert len(passages) == 10 and counts[discogs] == cap and max(counts.values()) == cap
    assert passages[0].article_id == discogs
    two = world.ask(question, tuning=Tuning(per_article=2)).passages
    assert Counter(p.article_id for p in two)[discogs] == 2


@pytest.mark.parametrize(("question", "speaker", "said"), [
    ("What did Qureshi say about Russia?", "Qureshi", "Qureshi reiterated Pakistan's resolve"),
    # the topic's words are in other chunks: the chunk with the speaker's words still goes first
    ("What did Qureshi say about Imran Khan and Lavrov's visit?", "Qureshi", "a factor of stability"),
    ("What did Mooney say about the Bears?", "Mooney", "It would've been crazy"),
])
def test_a_speakers_quotes_go_first(world, question, speaker, said):
    result = world.ask(question)
    assert result.filters_report()["speaker"] == speaker
    assert said in result.passages[0].text


def test_scores_stay_descending_when_a_quote_chunk_goes_first(world):
    # a chunk with Kelce's words goes first although another has a higher fused score; ask() checks the order
    result = world.ask("What did Kelce say about finding a breeder, and how did fans react on social media?")
    assert result.plan.speaker == "Kelce" and result.passages[0].article_id == world.id("Travis Kelce")


def test_a_multi_hop_question_gets_both_articles(world):
    result = world.ask("Did TechCrunch report that Apple took action against Beeper Mini, the app bringing "
                       "blue bubble iMessage texts to Android users, and did Sporting News report that the "
                       "cheapest season ticket rose by 78.8%?", k=4)
    hops = result.filters_report()["subqueries"]
    assert [s["sources"] for s in hops] == [["TechCrunch"], ["Sporting News"]]
    found = {p.article_id for p in result.passages}
    assert {world.id("Beeper Mini"), world.id("Inter Miami")} <= found


def test_the_dense_side_finds_a_paraphrase_bm25_cannot_see(world):
    question = "gramophone resale hobbyists angry"  # no word of it is in any chunk
    assert not world.indexes.lexical.scores(question).any()
    assert not world.indexes.sentences.scores(question).any()
    assert world.ask(question, tuning=Tuning(dense_weight=0)).passages == []
    hybrid = world.ask(question, k=3).passages
    assert [p.article_id for p in hybrid] == [world.id("Discogs")] * 3
    verge = world.ask(question, k=3, filters=Filters(sources=["The Verge"])).passages
    assert verge and verge[0].article_id == world.id("Discogs")
    later = world.ask(question, filters=Filters(since=date(2023, 10, 8))).passages  # Discogs: Oct 7
    assert later and all(map(_in(since=date(2023, 10, 8)), later))


def test_an_unchanged_store_reloads_the_saved_indexes_and_ranks_the_same(world):
    meta = Indexes.folder(world.settings.data_dir, world.store) / "meta.json"
    before = meta.stat()
    loaded = Indexes.open(world.store, world.settings.data_dir)
    assert loaded.fingerprint == world.indexes.fingerprint and loaded.is_current(world.store)
    assert (meta.stat().st_mtime_ns, meta.stat().st_ino) == (before.st_mtime_ns, before.st_ino)
    assert loaded.catalog.sources == world.indexes.catalog.sources
    for question in ("What did Qureshi say about Russia?", TEN_HAG, "gramophone resale hobbyists angry",
                     "What is the latest news about Erik ten Hag and Manchester United?"):
        fresh = world.ask(question).passages
        again = Retriever(world.store, world.embedder, loaded).retrieve(question).passages
        assert [(p.chunk_id, p.score) for p in again] == [(p.chunk_id, p.score) for p in fresh]


def test_indexes_follow_ingest_update_and_delete(settings, store, small_embedder, tmp_path):
    base = [rec("Billie Jean King sees"), rec("Craft beer and cheese")]
    ingest([str(write_articles(tmp_path / "base.json", base)), str(SEED)], store, small_embedder, settings)
    first = Indexes.open(store, settings.data_dir)

    def ask(indexes: Indexes, question: str) -> list[Passage]:
        return Retriever(store, small_embedder, indexes).retrieve(question).passages
    asx = rec("ASX set to open lower")
    ingest([str(write_articles(tmp_path / "new.json", [asx]))], store, small_embedder, settings)
    assert not first.is_current(store)
    added = Indexes.open(store, settings.data_dir)
    assert added.fingerprint != first.fingerprint and added.is_current(store)
    old_q = "Which lithium miner resisted the downward momentum of lithium prices?"
    top = ask(added, old_q)[0]
    assert top.title == asx["title"] and "Liontown" in top.text
    asx_id = top.article_id

    old = "with lithium miner Liontown resisting the downward momentum of lithium prices"
    new = "while Perth miner Quokka Metals tripled its share price after finding scandium"
    changed = {**asx, "body": asx["body"].replace(old, new)}
    report = ingest([str(write_articles(tmp_path / "upd.json", [changed]))], store, small_embedder, settings)
    assert (report.updated, changed["body"].count("Liontown")) == (1, 0)
    updated = Indexes.open(store, settings.data_dir)
    assert updated.fingerprint != added.fingerprint
    assert not any("Liontown" in t for t in updated.table.texts)
    assert not any("Liontown" in p.text for p in ask(updated, old_q))
    top = ask(updated, "Which Perth miner tripled its share price after finding scandium?")[0]
    assert (top.article_id, top.title) == (asx_id, asx["title"]) and "Quokka Metals" in top.text

    assert store.delete(asx_id)
    gone = Indexes.open(store, settings.data_dir)
    assert gone.fingerprint == first.fingerprint and gone.is_current(store)  # the store is as it was
    assert asx_id not in {a.id for a in gone.catalog.articles} and asx_id not in gone.article_ids
    assert all(p.article_id != asx_id for p in ask(gone, "Which Perth miner tripled its share price?"))


def test_saved_indexes_tagged_with_the_store_token_open_without_reading_the_store(settings, store,
                                                                                small_embedder, monkeypatch):
    ingest([str(SEED)], store, small_embedder, settings)
    first = Indexes.open(store, settings.data_dir)
    meta = Indexes.folder(settings.data_dir, store) / "meta.json"
    assert json.loads(meta.read_text())["generation"] == store.generation() is not None
    reads: list[int] = []
    real = store.all_records
    monkeypatch.setattr(store, "all_records", lambda **kw: reads.append(1) or real(**kw))
    again = Indexes.open(store, settings.data_dir)
    assert reads == [] and again.fingerprint == first.fingerprint and again.table.ids == first.table.ids
    store._bump()  # a write that changed nothing (e.g. killed before its first step): fingerprinted
    stamp = meta.stat().st_mtime_ns
    moved = Indexes.open(store, settings.data_dir)
    assert reads == [1] and moved.fingerprint == first.fingerprint and moved.is_current(store)
    assert meta.stat().st_mtime_ns == stamp  # the same content: the saved copy was loaded, not rebuilt
    ingest([str(write_articles(settings.data_dir / "asx.json", [rec("ASX set to open lower")]))],
           store, small_embedder, settings)
    added = Indexes.open(store, settings.data_dir)
    assert added.fingerprint != first.fingerprint and len(added.table.ids) > len(first.table.ids)


def test_a_big_store_gets_vector_clusters_saved_with_its_indexes_and_added_to_an_older_save(
        settings, store, small_embedder, monkeypatch):
    monkeypatch.setattr("assistant.indexes.MIN_ROWS", 2)  # the seed article's chunks count as big
    ingest([str(SEED)], store, small_embedder, settings)
    built = Indexes.open(store, settings.data_dir)
    folder = Indexes.folder(settings.data_dir, store)
    ivf = built.dense.ivf
    assert ivf is not None and ivf.size == len(built.table.ids) >= 2 and sorted(folder.glob("ivf-*")) != []
    for name in ("ivf-centroids.npy", "ivf-members.npy", "ivf-offsets.npy"):
        (folder / name).unlink()  # as saved by a version without (all of) them
    reopened = Indexes.open(store, settings.data_dir)
    assert reopened.dense.ivf is not None and len(list(folder.glob("ivf-*"))) == 5
    assert np.array_equal(reopened.dense.ivf.members, ivf.members)
    question = "What did Qureshi say about Russia?"
    assert ([p.chunk_id for p in Retriever(store, small_embedder, reopened).retrieve(question).passages]
            == [p.chunk_id for p in Retriever(store, small_embedder, built).retrieve(question).passages])


@pytest.mark.parametrize("damage", ["chunk-ids.json", "texts.bin", "truncated texts.bin", "vectors.npy",
                                    "chunk-numbers.npy", "quotes.jsonl", "sentence-chunk.npy", "meta.json",
                                    "swap", "bm25/vocab.index.json", "bm25-sentences/params.index.json"])
def test_a_torn_index_folder_is_rebuilt(settings, store, small_embedder, damage):
    ingest([str(SEED)], store, small_embedder, settings)
    good = Indexes.open(store, settings.data_dir)
    folder = Indexes.folder(settings.data_dir, store)
    if damage == "swap":  # killed between removing the old folder and renaming the new one
        shutil.rmtree(folder)
        folder.with_name(folder.name + ".tmp").mkdir()
    elif damage == "quotes.jsonl":
        (folder / damage).write_text('{"truncat')
    elif damage.startswith("truncated "):
        damage = damage.split()[1]
        (folder / damage).write_bytes((folder / damage).read_bytes()[:-100])
    else:
        (folder / damage).unlink()
    rebuilt = Indexes.open(store, settings.data_dir)
    assert rebuilt.fingerprint == good.fingerprint and rebuilt.table.ids == good.table.ids
    assert (folder / damage).is_file() or damage == "swap"
    assert not folder.with_name(folder.name + ".tmp").exists()
    top = Retriever(store, small_embedder, rebuilt).retrieve("What did Qureshi say about Russia?").passages[0]
    assert "Qureshi reiterated" in top.text  # the quote index is back too
    stamp = (folder / "meta.json").stat().st_mtime_ns
    assert Indexes.open(store, settings.data_dir).table.ids == good.table.ids  # saved whole: loads again
    assert (folder / "meta.json").stat().st_mtime_ns == stamp


def test_cli_retrieve_json(world):
    meta = Indexes.folder(world.settings.data_dir, world.store) / "meta.json"
    stamp = meta.stat().st_mtime_ns
    question = "According to TechCrunch, what mistakes did Google's Gemini Pro make?"
    done = run_cli("retrieve", question, "--json", "--k", "3", env=cli_env(world.settings.data_dir))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert out["question"] == question and out["filters"]["sources"] == ["TechCrunch"]
    assert out["filters"]["from_question"]
    keys = {"article_id", "title", "source", "published_at", "url", "text", "score"}
    assert len(out["passages"]) == 3 and all(keys <= p.keys() for p in out["passages"])
    assert [p["chunk_id"] for p in out["passages"]] == [p.chunk_id for p in world.ask(question, k=3).passages]
    assert meta.stat().st_mtime_ns == stamp  # the CLI loaded the saved indexes, it did not rebuild them


def test_cli_retrieve_rejects_a_bad_date(world):
    done = run_cli("retrieve", "Beeper Mini", "--since", "yesterday", env=cli_env(world.settings.data_dir))
    assert done.returncode == 2 and done.stdout == ""
    assert "--since" in done.stderr and "'yesterday'" in done.stderr and "Traceback" not in done.stderr


def test_outlets_named_without_a_filter_phrase_are_searched_first(world):
    question = "Did Sky Sports and The Roar write about Alabama and the College Football Playoff?"
    named = {"Sky Sports", "The Roar | Sports Writers Blog"}
    preferred = world.ask(question)
    assert preferred.filters_report()["sources"] == []  # two outlets named: no hard filter
    assert preferred.passages and {p.source for p in preferred.passages} <= named
    plain = world.ask(question, tuning=Tuning(prefer_mentioned=False))
    assert world.id("Can Alabama make College") in {p.article_id for p in plain.passages}
    # when the named outlets have nothing inside the explicit filters, everything else is searched
    window = Filters(since=date(2023, 11, 1), until=date(2023, 12, 10))  # neither outlet published then
    late = world.ask(question, filters=window)
    assert world.id("Can Alabama make College") in {p.article_id for p in late.passages}


class CountingStore(Store):
    """A real Store that counts the full reads a change check makes (every article record)."""

    full_reads = 0

    def all_records(self, include_body: bool = False) -> Iterable[tuple[str, dict[str, Any], str | None]]:
        self.full_reads += 1
        return super().all_records(include_body)


def test_change_checks_read_one_token_until_a_write_from_any_process_moves_it(
        tmp_path, settings, small_embedder):
    reader = CountingStore(make_client(settings), small_embedder.name, settings.collection_prefix)
    assert reader.generation() is None  # nothing written yet
    ingest([str(SEED)], reader, small_embedder, settings)
    token = reader.generation()
    assert token is not None
    ix = Indexes.open(reader, settings.data_dir)
    reader.full_reads = 0
    assert all(ix.is_current(reader) for _ in range(5)) and reader.full_reads == 0  # the token sufficed

    # another client of the same store (as another process would be) writes: the token moves
    writer = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    other = write_articles(tmp_path / "other.json", [rec("ASX set to open lower")])
    ingest([str(other)], writer, small_embedder, settings)
    assert writer.generation() not in (None, token)
    assert not ix.is_current(reader) and reader.full_reads == 1  # moved: fingerprinted, and found changed
    fresh = Indexes.open(reader, settings.data_dir)
    assert fresh.is_current(reader) and fresh.generation == reader.generation()

    moved = reader.generation()
    assert writer.delete(next(i for i, _, _ in writer.all_records() if i not in ix.article_ids))
    assert reader.generation() != moved and not fresh.is_current(reader)
    again = Indexes.open(reader, settings.data_dir)
    assert again.fingerprint == ix.fingerprint  # back to the first store's content
    # an unchanged re-ingest writes nothing: the token stays, no full read
    reader.full_reads, before = 0, reader.generation()
    assert ingest([str(SEED)], writer, small_embedder, settings).unchanged == 1
    assert reader.generation() == before and again.is_current(reader) and reader.full_reads == 0


@given(st.lists(st.integers(0, 6), max_size=60), st.integers(1, 70))
def test_top_equals_a_stable_argsorts_first_n(values, n):
    from assistant.retrieve import _top

    key = np.array(values, dtype=np.float32) / 2  # few distinct values: many ties
    assert _top(key, n).tolist() == np.argsort(-key, kind="stable")[:n].tolist()


def bm25s_scores(index: LexicalIndex, query: str) -> np.ndarray:
    """bm25s' own scoring of the index (the oracle), repeated words and all."""
    tokens = [t for t in tokenize(query) if t in index.vocab]
    if not tokens:
        return np.zeros(index.size, np.float32)
    return np.asarray(index.bm25.get_scores(tokens), np.float32)


def test_the_streamed_bm25_build_equals_bm25s_own_index(tmp_path):
    bodies = [r["body"] for r in corpus_records()[:40]]
    texts = [b[i : i + 900] for b in bodies for i in range(0, min(len(b), 3600), 900)]
    texts += ["", "the of and", "Police police POLICE said.", texts[0]]  # empty, only stopwords, repeats
    ours = LexicalIndex.build(iter(texts))  # a generator: read once
    reference = bm25s.BM25(k1=1.2, b=0.75)
    reference.index([tokenize(t) or ["\x00"] for t in texts], show_progress=False)
    assert ours.size == len(texts) and set(reference.vocab_dict) - set(ours.vocab) <= {""}
    ours.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    questions = [r["title"] for r in corpus_records()[:30]] + ["police police said", "zzzz", texts[5][:200]]
    for question in questions:
        tokens = [t for t in tokenize(question) if t in reference.vocab_dict]
        expected = reference.get_scores(tokens) if tokens else np.zeros(len(texts))
        assert np.allclose(ours.scores(question), expected, rtol=1e-6, atol=1e-6), question
        assert np.array_equal(loaded.scores(question), ours.scores(question)), question
    assert LexicalIndex.build([]).size == 0 and not LexicalIndex.build([]).scores("police").any()


def test_postings_sum_to_the_dense_bm25_scores_and_the_best_sentence_is_their_max(settings, store,
                                                                                   small_embedder):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", corpus_records()[:8]))], store,
           small_embedder, settings)
    ix = Indexes.open(store, settings.data_dir)
    shared = SentenceView(ix, np.arange(len(ix.table.ids)) % 3 == 0)
    for query in ["What did the company say about its revenue?", "said said police police",
                  "zzzz-unknown-word", ix.table.texts[3][:120]]:
        for index in (ix.lexical, ix.sentences, ix.articles):
            rows, values = index.postings(query)
            summed = np.zeros(index.size, np.float32)
            np.add.at(summed, rows, values)
            assert np.allclose(summed, bm25s_scores(index, query), atol=1e-4), query
            assert np.allclose(index.scores(query), summed, atol=1e-4), query
        oracle = np.zeros(len(ix.table.ids), np.float32)
        np.maximum.at(oracle, ix.sentence_chunk, ix.sentences.scores(query))
        assert np.allclose(ix.best_sentence(query), oracle, atol=1e-4), query
        some = np.arange(len(ix.table.ids)) % 3 == 0  # only these chunks scored, the others 0
        assert np.allclose(ix.best_sentence(query, some), np.where(some, oracle, 0), atol=1e-4), query
        # one view shared by a question's texts (each word filtered once) scores each text the same
        assert np.allclose(shared.best(query), np.where(some, oracle, 0), atol=1e-4), query
    assert ix.best_sentence("What did the company say about its revenue?").max() > 0  # the probes match
    # the per-sentence sums are summed in lent scratch arrays: given back zeroed, one per concurrent caller
    assert ix.sentence_sums._free and not any(z.any() for z in ix.sentence_sums._free)
    texts = [ix.table.texts[i][:150] for i in range(0, 40, 5)]
    expected = [ix.best_sentence(t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ix.best_sentence, texts * 10))
    assert all(np.array_equal(g, expected[i % len(texts)]) for i, g in enumerate(got))


def test_sentence_candidates_in_a_big_store_are_the_top_scores_by_a_sampled_cut():
    rng = np.random.default_rng(3)
    n = 100_000
    for scores in (rng.gamma(1.0, 2.0, n), np.where(rng.random(n) < 0.5, 0.0, rng.random(n)),
                   np.where(rng.random(n) < 0.002, 1.0 + rng.random(n), 0.0)):
        chosen = candidates(scores.astype(np.float32), 2000, None)
        assert chosen is not None
        assert scores[chosen].min() >= scores[~chosen].max()  # a cut-off: every chosen one beats the rest
        positive = int((scores > 0).sum())
        assert abs(int(chosen.sum()) - min(2000, positive)) <= 0.15 * 2000 or chosen.sum() == positive
        assert scores[chosen].min() > 0  # a chunk without the words is never a candidate
    ties = np.where(rng.random(n) < 0.2, 1.0, 0.5).astype(np.float32)  # 20k tied at the top
    assert candidates(ties, 2000, None).sum() == 2000  # too many tied at the cut-off: the exact top
    allowed = rng.random(n) < 0.01  # a narrow filter: candidates come from inside it
    chosen = candidates(rng.gamma(1.0, 2.0, n).astype(np.float32), 2000, allowed)
    assert chosen is not None and not (chosen & ~allowed).any() and chosen.sum() >= 900
    month = rng.random(n) < 0.2  # a month's 20k chunks: the cut-off is sampled among them alone
    scores = rng.gamma(1.0, 2.0, n).astype(np.float32)
    chosen = candidates(scores, 2000, month)
    assert chosen is not None and not (chosen & ~month).any()
    assert abs(int(chosen.sum()) - 2000) <= 0.15 * 2000
    assert scores[chosen].min() >= scores[month & ~chosen].max()
    assert candidates(ties, 2000, None) is not None and candidates(ties[:2000], 2000, None) is None


def test_sentence_scores_for_the_top_chunks_only_keep_the_best_passage(settings, store, small_embedder):
    records = corpus_records()[:10]
    source = write_articles(settings.data_dir.parent / "b.json", records)
    ingest([str(source)], store, small_embedder, settings)
    ix = Indexes.open(store, settings.data_dir)
    assert len(ix.table.ids) > 40
    every = Retriever(store, small_embedder, ix, Tuning(sentence_candidates=0))
    few = Retriever(store, small_embedder, ix, Tuning(sentence_candidates=20))
    title_scores = ix.lexical.scores(records[0]["title"])
    assert candidates(title_scores, few.tuning.sentence_candidates, None).sum() == 20
    for record in records:
        question = f"What happened in {record['title']}?"
        assert few.retrieve(question).passages[0].chunk_id == every.retrieve(question).passages[0].chunk_id
