"""Service: wires Settings into the store, embedder, indexes, retriever and answerer.

Shared by the CLI, the HTTP API and the eval runner, so all three answer the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.answer import Answerer
from assistant.embed import Embedder, embedder_key, make_embedder
from assistant.extractive import Extractive
from assistant.indexes import Indexes
from assistant.llm import LLM, make_llm
from assistant.retrieve import Retriever
from assistant.settings import Settings
from assistant.store import Store, make_client


@dataclass
class Service:
    settings: Settings
    store: Store
    embedder: Embedder
    indexes: Indexes
    retriever: Retriever
    answerer: Answerer

    def refresh(self) -> bool:
        """Rebuild the indexes when the store changed (e.g. another process ingested). True if it did."""
        if self.indexes.is_current(self.store):
            return False
        self.indexes = Indexes.open(self.store, self.settings.data_dir)
        self.retriever.indexes = self.indexes
        self.answerer.extractive = extractive_for(self.indexes)
        return True


def open_store(settings: Settings) -> Store:
    return Store(make_client(settings), embedder_key(settings), settings.collection_prefix)


def extractive_for(indexes: Indexes) -> Extractive:
    return Extractive(indexes.lexical.idf(), indexes.quotes)


def open_service(settings: Settings, llm: LLM | None = None, embedder: Embedder | None = None) -> Service:
    """Everything needed to answer questions about the store `settings` points at."""
    store = open_store(settings)
    embedder = embedder or make_embedder(settings)
    indexes = Indexes.open(store, settings.data_dir)
    retriever = Retriever(store, embedder, indexes)
    llm = llm if llm is not None else make_llm(settings)
    return Service(settings, store, embedder, indexes, retriever,
                   Answerer(retriever, extractive_for(indexes), llm, budget_s=settings.answer_timeout_s))
