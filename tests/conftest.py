"""Shared fixtures: real models (random-weight GPT-2 and Llama, the bundled SmolLM2) and real stores."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# No circuits kept on disk (ingest/circuits.py): whether a batch reads a layer's circuit or projects its rows
# directly would otherwise depend on which tests ran before (the annotations agree only up to float
# rounding). tests/test_circuits.py turns the cache on where it tests it. Subprocesses inherit this.
os.environ["LENSGRAPH_CIRCUIT_CACHE_GB"] = "0"

from ingest.pipeline import Ingestor, Prepared
from ingest.prompts import PromptSpec
from lensgraph.store import Store, open_store

FRANCE = "The capital of France is"
IOI = "When Mary and John went to the store, John gave a drink to"
JAPAN = "The capital of Japan is the city of"
# every architecture family, with random weights (the real GPT-2 tokenizer) — tiny and fast
RANDOM_FAMILIES = ["random:gpt2-tiny", "random:llama-tiny", "random:mistral-tiny", "random:qwen2-tiny",
                   "random:gemma2-tiny", "random:gemma3-tiny", "random:gptj-tiny", "random:neox-tiny",
                   "random:neox-sequential-tiny", "random:gptneo-tiny", "random:opt-tiny"]


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
    todo = list(prepared.values())
    for start in range(0, len(todo), 32):  # as the worker does: the passes of a batch share one projection
        ingestor.run_batch(store, todo[start:start + 32])
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
def families(tmp_path_factory: pytest.TempPathFactory, tiny: dict[str, Ingested]) -> dict[str, Ingested]:
    """Every random family (the `tiny` ones included), two prompts each, in one more store."""
    path = tmp_path_factory.mktemp("families") / "store.lbug"
    store = open_store(str(path))
    out = dict(tiny)
    for name in RANDOM_FAMILIES:
        if name not in out:
            ingestor = Ingestor(name)
            out[name] = Ingested(ingestor, store, path, ingest_into(ingestor, store, [FRANCE, IOI]))
    yield out
    store.close()


def _bundled(factory: pytest.TempPathFactory, name: str, prompts: list[str]):  # noqa: ANN202
    path = factory.mktemp(name) / "store.lbug"
    store = open_store(str(path))
    ingestor = Ingestor(name)
    yield Ingested(ingestor, store, path, ingest_into(ingestor, store, prompts))
    store.close()


@pytest.fixture(scope="session")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """The bundled Gemma 3 270M (real weights; 262k vocabulary, 4 heads / 1 KV head, extra norms)."""
    yield from _bundled(tmp_path_factory, "gemma3-270m", [JAPAN, FRANCE])


@pytest.fixture(scope="session")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """The bundled SmolLM2-135M (real weights) with the France and IOI prompts."""
    yield from _bundled(tmp_path_factory, "smollm2-135m", [FRANCE, IOI])


def pytest_addoption(parser: pytest.Parser) -> None:
    """--neo4j-uri: run tests/test_neo4j_server.py against an existing Neo4j (a scratch database: emptied)."""
    parser.addoption("--neo4j-uri", default=None, metavar="ADDRESS",
                     help="neo4j://user:pass@host:7687[/database] of a scratch Neo4j 5 for the server tests; "
                          "without it they start one with testcontainers, or skip when no Docker engine answers")


@pytest.fixture(scope="session")
def smol_facts(tmp_path_factory: pytest.TempPathFactory, smol: Ingested) -> Ingested:
    """SmolLM2-135M over the 30 shortest prompts of data/known_facts.json, for cross-prompt queries (~3 min)."""
    import json

    facts = json.loads((Path(__file__).parent.parent / "data" / "known_facts.json").read_text())
    prompts = sorted((f["prompt"] for f in facts), key=len)[:30]  # short prompts ingest faster
    path = tmp_path_factory.mktemp("smol_facts") / "store.lbug"
    store = open_store(str(path))  # one handle for all 30 passes (it reopens itself to free its buffer pool)
    passes = ingest_into(smol.ingestor, store, prompts)
    store.close()
    store = open_store(str(path), read_only=True)
    yield Ingested(smol.ingestor, store, path, passes)
    store.close()
