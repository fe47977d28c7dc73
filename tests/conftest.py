"""Shared fixtures: real models (random-weight GPT-2 and Llama, the bundled SmolLM2) and real stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.pipeline import Ingestor, Prepared
from ingest.prompts import PromptSpec
from lensgraph.store import Store, open_store

FRANCE = "The capital of France is"
IOI = "When Mary and John went to the store, John gave a drink to"


@dataclass
class Ingested:
    ingestor: Ingestor
    store: Store
    path: Path
    passes: dict[str, Prepared]  # prompt -> its prepared pass


def ingest_into(ingestor: Ingestor, store: Store, prompts: list[str]) -> dict[str, Prepared]:
    if not store.has_model(ingestor.loaded.name):
        store.write_model(ingestor.static())
    prepared = {p: ingestor.prepare(PromptSpec(p)) for p in prompts}
    for p in prepared.values():
        ingestor.run(store, p)
    return prepared


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ingested]:
    """random:gpt2-tiny and random:llama-tiny, two prompts each, in ONE store (several models per store)."""
    path = tmp_path_factory.mktemp("tiny") / "store.lbug"
    store = open_store(str(path))
    out = {}
    for name in ("random:gpt2-tiny", "random:llama-tiny"):
        ingestor = Ingestor(name)
        out[name] = Ingested(ingestor, store, path, ingest_into(ingestor, store, [FRANCE, IOI]))
    yield out
    store.close()


@pytest.fixture(scope="session")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """The bundled SmolLM2-135M (real weights) with the France and IOI prompts."""
    path = tmp_path_factory.mktemp("smol") / "store.lbug"
    store = open_store(str(path))
    ingestor = Ingestor("smollm2-135m")
    yield Ingested(ingestor, store, path, ingest_into(ingestor, store, [FRANCE, IOI]))
    store.close()
