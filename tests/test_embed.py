"""Embedders: the real ONNX MiniLMs, pinned-weight checks, OpenAIEmbedder against a scripted server."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env, run_cli, shortest_records, write_articles

from assistant.embed import (
    BULK_WINDOWS,
    ONNX_MODELS,
    ModelFileError,
    OnnxEmbedder,
    OpenAIEmbedder,
    _length_batches,
    _package_dir,
    _solo_sessions,
)
from assistant.store import Store, make_client
from ingest.formats import article_from_record
from ingest.models import Chunk
from ingest.pipeline import embed_texts, ingest

PARAPHRASE = ("The president signed the new budget bill into law on Friday.",
              "On Friday the new budget bill was signed into law by the president.")
UNRELATED = "Heavy rain flooded the football stadium before the match."
TEXTS = [
    "A fairly long sentence about central banks raising interest rates again to fight stubborn inflation, "
    "which weighed on stocks, bonds and the currency for most of the week.",
    "Short.",
    PARAPHRASE[0],
    "x",
    UNRELATED + " " + UNRELATED + " " + UNRELATED,
    "",
    PARAPHRASE[1],
    "Taylor Swift was named Time's Person of the Year.",
]


def check_vectors(vectors: np.ndarray, n: int) -> None:
    assert vectors.dtype == np.float32 and vectors.shape == (n, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def check_semantics(embedder) -> None:
    a, b, c = embedder.embed([*PARAPHRASE, UNRELATED])
    assert float(a @ b) > float(a @ c) + 0.2, (float(a @ b), float(a @ c))


def test_minilm_l3_vectors_order_and_batching(small_embedder):
    single = np.vstack([small_embedder.embed([t]) for t in TEXTS])
    check_vectors(single, len(TEXTS))
    small_batches = OnnxEmbedder("minilm-l3", batch_size=3, threads=2)  # length-sorted batches of 3, padded
    assert np.abs(small_batches.embed(TEXTS) - single).max() < 1e-5  # a few texts: on the shared session
    many = TEXTS * (BULK_WINDOWS // len(TEXTS) + 1)  # an ingest's worth: side by side, 1 session per core
    together = small_batches.embed(many)
    check_vectors(together, len(many))
    assert np.abs(together - np.vstack([single] * (len(many) // len(TEXTS)))).max() < 1e-5
    in_turn = OnnxEmbedder("minilm-l3", batch_size=3, threads=1).embed(many)  # one session, batch by batch
    assert np.abs(in_turn - together).max() < 1e-5
    sessions = _solo_sessions(2)  # one per usable core, here 2 (1 on a one-core runner: no side by side)
    assert (small_batches._solo.qsize() if small_batches._solo else 1) == sessions  # all handed back
    fresh = OnnxEmbedder("minilm-l3", batch_size=32, threads=2)
    assert np.abs(fresh.embed(TEXTS) - single).max() < 1e-5
    assert fresh._solo is None  # a few texts (a question's) stay on the shared session
    assert np.abs(small_embedder.embed(TEXTS) - single).max() < 1e-5  # batches of similar length
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    assert np.abs(small_batches.embed([TEXTS[i] for i in order]) - single[order]).max() < 1e-5
    assert len({v.tobytes() for v in single}) == len(TEXTS)
    check_semantics(small_embedder)
    assert small_embedder.embed([]).shape == (0, 384)


def test_a_text_over_the_model_limit_counts_whole_as_the_mean_over_its_windows(small_embedder):
    limit = ONNX_MODELS["minilm-l3"].max_tokens  # 128 word pieces with [CLS] and [SEP]
    words = ["alpha", "beta", "gamma", "delta", "river", "market", "court", "vote"]  # one word piece each
    first = " ".join(words[i % 8] for i in range(limit - 2))
    second = " ".join(words[(i * 3) % 8] for i in range(limit - 2))
    tokenizer = small_embedder._tokenizer
    ids = [tokenizer.encode(t).ids for t in (first, second)]
    assert [len(i) for i in ids] == [limit, limit]
    whole = small_embedder.embed([f"{first} {second}"])[0]
    run = functools.partial(small_embedder._run, small_embedder._session)
    # the oracle: mean pooling over every token state of both windows, normalised
    summed = run(ids[:1])[0] + run(ids[1:])[0]
    assert np.abs(whole - summed / np.linalg.norm(summed)).max() < 1e-5
    # the tail past the limit changes the vector (truncation ignored it), and a short text is as before
    tails = small_embedder.embed([f"{first} {UNRELATED}", f"{first} {PARAPHRASE[0]}"])
    assert np.abs(tails[0] - tails[1]).max() > 1e-3  # truncated, both were the first window's vector
    short = run(ids[:1])[0]
    assert np.abs(small_embedder.embed([first])[0] - short / np.linalg.norm(short)).max() < 1e-5
    # windows of several texts in one call land on their own text, whatever the batching
    mixed = OnnxEmbedder("minilm-l3", batch_size=2).embed(["Short.", f"{first} {second}", first])
    assert np.abs(mixed[1] - whole).max() < 1e-5
    assert np.abs(mixed[0] - small_embedder.embed(["Short."])[0]).max() < 1e-5


def test_batches_group_similar_lengths_shortest_first():
    lengths = [30, 12, 200, 31, 14, 210, 11, 250, 45]
    batches = list(_length_batches(lengths, size=3))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # each text once
    assert [[lengths[i] for i in b] for b in batches] == [[11, 12, 14], [30, 31], [45], [200, 210, 250]]
    assert all(len(b) <= 2 for b in _length_batches([100] * 5, size=2))  # the size still caps a batch
    assert list(_length_batches([], size=8)) == []


def test_minilm_l6_int8_on_a_handful_of_texts():
    embedder = OnnxEmbedder("minilm-l6-int8", batch_size=2)
    texts = TEXTS[:5]
    together = embedder.embed(texts)
    check_vectors(together, len(texts))
    single = np.vstack([embedder.embed([t]) for t in texts])
    assert np.abs(together - single).max() < 1e-5
    check_semantics(embedder)


def copy_package(package: str, tmp_path: Path) -> Path:
    """A copy of an installed weights package under tmp_path (to be put first on sys.path)."""
    target = tmp_path / "site" / package
    shutil.copytree(_package_dir(package), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    spec = ONNX_MODELS["minilm-l3"]
    copy = copy_package(spec.package, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert _package_dir(spec.package) == copy
    OnnxEmbedder("minilm-l3")  # the untouched copy passes its check
    tampered_dir = tmp_path / "tampered"
    shutil.copytree(tmp_path / "site", tampered_dir)
    flip_a_byte(tampered_dir / spec.package / spec.weights)
    monkeypatch.syspath_prepend(str(tampered_dir))
    with pytest.raises(ModelFileError, match="refusing to load") as err:
        OnnxEmbedder("minilm-l3")
    assert str(tampered_dir) in str(err.value) and spec.sha256 in str(err.value)

    (tampered_dir / spec.package / spec.weights).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        OnnxEmbedder("minilm-l3")


def test_weights_changed_after_a_good_load_are_refused(tmp_path, monkeypatch):
    spec = ONNX_MODELS["minilm-l3"]
    copy = copy_package(spec.package, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    OnnxEmbedder("minilm-l3")  # checked once and accepted in this process
    flip_a_byte(copy / spec.weights)
    with pytest.raises(ModelFileError, match="refusing to load"):
        OnnxEmbedder("minilm-l3")  # the same path is checked again, not taken from the cache


def test_tampered_tokenizer_is_refused(tmp_path, monkeypatch):
    from assistant.embed import _TOKENIZER

    package, relpath, _ = _TOKENIZER
    target = tmp_path / "site" / package / relpath
    target.parent.mkdir(parents=True)
    (tmp_path / "site" / package / "__init__.py").write_text("")
    shutil.copyfile(_package_dir(package) / relpath, target)
    original = target.read_text(encoding="utf-8")
    tampered = original.replace('"government"', '"governmint"', 1)
    assert tampered != original
    target.write_text(tampered, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert _package_dir(package) == tmp_path / "site" / package
    with pytest.raises(ModelFileError, match="refusing to load"):
        OnnxEmbedder("minilm-l3")


# --- OpenAI-compatible embeddings server --------------------------------------------------------------

DIM = 24


def scripted_vector(text: str) -> np.ndarray:
    """The server's deterministic, deliberately not normalized vector for a text."""
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest() * 3, dtype=np.uint8)[:DIM]
    return (raw.astype(np.float32) - 127.5) / 10.0


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if self.headers.get("Authorization") != "Bearer test-key":
            return self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        server.requests.append({"model": body["model"], "inputs": inputs,  # type: ignore[attr-defined]
                                "encoding_format": body.get("encoding_format")})
        data = []
        for i, text in enumerate(inputs):
            vector = scripted_vector(text)
            if body.get("encoding_format") == "base64":
                embedding: object = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            else:
                embedding = vector.tolist()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        data = data[1::2] + data[0::2]  # out of order: the client must sort by `index`
        self._send(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})

    def _send(self, status: int, payload: dict) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def openai_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_openai_embedder_orders_and_normalizes(openai_server):
    embedder = OpenAIEmbedder("test-model", batch_size=3)
    assert (embedder.name, embedder.dim) == ("openai-test-model", DIM)
    texts = [f"text number {i} " + "word " * i for i in range(8)] + ["", "   "]
    vectors = embedder.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), DIM)
    expected = np.vstack([unit(scripted_vector(t if t.strip() else " ")) for t in texts])
    assert np.abs(vectors - expected).max() < 1e-6
    sent = openai_server.requests
    assert [len(r["inputs"]) for r in sent] == [1, 3, 3, 3, 1]  # the dimension probe, then batches of 3
    assert [t for r in sent[1:] for t in r["inputs"]] == [t if t.strip() else " " for t in texts]
    assert {r["model"] for r in sent} == {"test-model"}


def test_cli_ingest_with_the_openai_embedder(tmp_path, openai_server, settings):
    records = shortest_records(3)
    inputs = str(write_articles(tmp_path / "articles.json", records))
    env = cli_env(settings.data_dir, NEWSQA_EMBEDDER="openai", NEWSQA_OPENAI_EMBEDDING_MODEL="test-model")
    done = run_cli("ingest", inputs, "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["added"], report["failed"], report["articles"]) == (3, [], 3)
    assert report["chunks"] > 3

    store = Store(make_client(settings), "openai-test-model")
    got = store.chunks.get(include=["documents", "metadatas", "embeddings"])
    assert len(got["ids"]) == report["chunks"]
    articles = {a.id: a for a in (article_from_record(r, "x") for r in records)}
    for doc, meta, vector in zip(got["documents"], got["metadatas"], got["embeddings"], strict=True):
        article = articles[meta["article_id"]]
        chunk = Chunk(id="c", article_id=article.id, index=0, text=doc, char_start=0, char_end=len(doc),
                      tokens=1)
        (text,) = embed_texts(article, [chunk])  # the header line, then the chunk text
        assert np.abs(np.asarray(vector) - unit(scripted_vector(text))).max() < 1e-5
    again = run_cli("ingest", inputs, "--json", env=env)
    assert json.loads(again.stdout)["unchanged"] == 3
    n_embedded = sum(len(r["inputs"]) for r in openai_server.requests)
    assert n_embedded == report["chunks"]  # no dimension probe, nothing re-embedded


def test_cli_stats_after_an_openai_ingest(tmp_path, openai_server, settings):
    settings = settings.model_copy(update={"embedder": "openai", "openai_embedding_model": "test-model"})
    inputs = str(write_articles(tmp_path / "articles.json", shortest_records(1)))
    embedder = OpenAIEmbedder("test-model")
    report = ingest([inputs], Store(make_client(settings), embedder.name), embedder, settings)
    assert report.articles == 1
    env = cli_env(settings.data_dir, NEWSQA_EMBEDDER="openai", NEWSQA_OPENAI_EMBEDDING_MODEL="test-model")
    stats = run_cli("stats", "--json", env=env)
    assert json.loads(stats.stdout)["articles"] == 1
