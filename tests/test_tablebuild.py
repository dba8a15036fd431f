"""The chunk table built page by page (assistant/tablebuild.py) equals the one its rows make when sorted
by id — whatever order and page size Chroma uses — with each vector on its own chunk's row, rejected
rows left out, and its texts and vectors written into the folder given (spill files gone)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.chunktable import ChunkTable, TextColumn
from assistant.tablebuild import table_from_pages


def rows(n: int, rng: np.random.Generator) -> list[tuple[str, str, dict, np.ndarray]]:
    out = []
    for i in range(n):
        a = i // 3  # three chunks per article; article fields are the same on each
        article = f"a{a:03d}"
        meta = {"article_id": article, "title": f"Title {article}", "source": ["BBC", "Wired"][a % 2],
                "published_at": f"2023-10-0{1 + a % 9}", "published_ts": 1_696_000_000.0 + a,
                "url": f"https://x.test/{article}", "category": "news",
                "content_hash": "old" if a % 5 == 3 else "h",
                "chunk_index": i % 3, "char_start": 10 * (i % 3), "char_end": 10 * (i % 3) + 9}
        vector = rng.standard_normal(4).astype(np.float32)
        out.append((f"{article}:h:{i % 3:04d}", f"text {i} é ✓", meta, vector))
    return out


@pytest.mark.parametrize("page", [1, 5, 7, 1000])
def test_pages_in_any_order_give_the_table_of_the_sorted_kept_rows(tmp_path, page):
    rng = np.random.default_rng(page)
    data = rows(40, rng)
    shuffled = [data[i] for i in rng.permutation(len(data))]
    parts = [shuffled[s : s + page] for s in range(0, len(shuffled), page)]
    pages = [([r[0] for r in p], [r[1] for r in p], [r[2] for r in p], np.stack([r[3] for r in p]))
             for p in parts]
    calls = []
    table, vectors = table_from_pages(iter(pages), lambda m: m["content_hash"] == "h", tmp_path,
                                      lambda: calls.append(1))
    kept = sorted((r for r in data if r[2]["content_hash"] == "h"), key=lambda r: r[0])
    assert len(calls) == len(pages)
    assert isinstance(table, ChunkTable) and table.ids == [r[0] for r in kept]
    assert list(table.texts) == [r[1] for r in kept]
    np.testing.assert_array_equal(vectors, np.stack([r[3] for r in kept]))
    for i, (_, _, meta, _) in enumerate(kept):
        got = table.meta[i]
        assert got == {k: meta[k] for k in got}
    firsts = list(dict.fromkeys(r[2]["article_id"] for r in kept))  # articles by their first chunk
    assert [a["article_id"] for a in table.articles] == firsts
    assert table.sources.isin(["Wired"]).tolist() == [r[2]["source"] == "Wired" for r in kept]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.bin", "vectors.npy"]
    table.save(tmp_path)  # the texts are already in place: saving keeps them
    assert list(ChunkTable.load(tmp_path).texts) == [r[1] for r in kept]


def test_no_rows_or_none_kept_give_an_empty_table(tmp_path):
    table, vectors = table_from_pages(iter([]), lambda m: True, tmp_path)
    assert table.ids == [] and vectors.shape[0] == 0
    data = rows(4, np.random.default_rng(0))
    page = ([r[0] for r in data], [r[1] for r in data], [r[2] for r in data], np.stack([r[3] for r in data]))
    table, vectors = table_from_pages(iter([page]), lambda m: False, tmp_path)
    assert table.ids == [] and vectors.shape == (0, 4) and table.articles == []


def test_arranged_vectors_come_in_the_order_of_the_table_rows_given(tmp_path):
    data = rows(12, np.random.default_rng(3))
    page = ([r[0] for r in data], [r[1] for r in data], [r[2] for r in data], np.stack([r[3] for r in data]))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, by_table = table_from_pages(iter([page]), lambda m: True, tmp_path / "a")
    reverse = lambda table: np.arange(len(table.ids))[::-1]  # noqa: E731
    table, arranged = table_from_pages(iter([page]), lambda m: True, tmp_path / "b", arrange=reverse)
    assert table.ids == plain.ids
    np.testing.assert_array_equal(arranged, np.asarray(by_table)[::-1])


@pytest.mark.parametrize(("block", "rows"), [(1, 2), (7, 3), (1 << 22, 65_536)])
def test_texts_read_from_the_saved_blob_equal_the_column(tmp_path, monkeypatch, block, rows):
    monkeypatch.setattr("assistant.chunktable.READ_ROWS", rows)
    texts = ["", "plain", "é ✓ ü", "\ud800 lone surrogate", "", "x" * 50, "last"]
    column = TextColumn.of_encoded([t.encode("utf-8", "surrogatepass") for t in texts])
    column.blob.tofile(tmp_path / "texts.bin")
    assert list(column.read(tmp_path / "texts.bin", block)) == list(column) == texts
