"""Ingest prompts into a store: validate everything first, then capture, build and write each pass."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import lensgraph
from ingest.adapters import LayerWeights
from ingest.capture import Capture, capture
from ingest.circuits import CIRCUIT_VERSION, CircuitCache
from ingest.cores import one_torch_thread
from ingest.graph import Layout, ModelTables, annotate, assemble, layout
from ingest.lens import LensStats, LogitLens
from ingest.loading import LoadedModel, load_model, weights_fingerprint
from ingest.prompts import PromptSpec
from ingest.static import static_graph, token_texts
from lensgraph import config, schema
from lensgraph.errors import InputError
from lensgraph.records import ModelGraph, PassGraph
from lensgraph.store import Store


# Rows per store transaction (8 SmolLM2 passes, 13 of GPT-2 small; a larger pass goes alone): the embedded
# store checkpoints once per transaction, ~1.4 s whatever it adds. 16 SmolLM2 passes a transaction wrote
# 1.13-1.6x faster, but LadybugDB holds a transaction's pages until it reopens: peak RSS 4.34 GB, over 4 GB
WRITE_ROWS = 1_000_000


@dataclass
class Prepared:
    """A prompt that passed validation, with everything that identifies its pass."""

    spec: PromptSpec
    token_ids: list[int]  # the whole prompt
    position: int  # the analysed position, resolved to 0..len-1
    target_id: int | None
    settings: dict
    uid: str


@dataclass
class PassResult:
    uid: str
    prompt: str
    written: bool  # False: already complete in the store (a no-op)
    prediction: str = ""
    prediction_prob: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    rows: int = 0


@dataclass
class Computed:
    """A batch's passes captured and annotated (Ingestor.compute), not yet written. Timings are per pass."""

    results: list[PassResult | None]  # filled where a pass needs no write; the others by Ingestor.write
    todo: list[tuple[int, Layout, dict[str, float]]]  # (index in the batch, layout, timings)
    stats: list[LensStats]  # the annotation of each layout in todo


class Ingestor:
    """One loaded model, its weights in the adapter's convention, and its per-model tables."""

    def __init__(self, model: str | LoadedModel, top_k: int = config.TOP_K,
                 promotes_k: int = config.PROMOTES_K, say: Callable[[str], None] = lambda _: None) -> None:
        self.loaded = load_model(model, say) if isinstance(model, str) else model
        m, adapter = self.loaded, self.loaded.adapter
        self.top_k, self.promotes_k = top_k, promotes_k
        self.weights: list[LayerWeights] = [adapter.weights(b, m.spec) for b in adapter.blocks(m.model)]
        circuits = CircuitCache(config.cache_dir() / "circuits" / f"{schema.model_key(m.name)}-"
                                f"{weights_fingerprint(m)}-v{CIRCUIT_VERSION}", config.circuit_budget())
        self.lens = LogitLens(adapter.final_norm(m.model), *adapter.unembed(m.model), m.spec.logit_softcap, circuits)
        texts = token_texts(m)
        self.tables = ModelTables(
            texts=texts,
            token_uids=np.array([schema.token_uid(m.name, i) for i in range(len(texts))], dtype=object),
            neuron_uids={
                (layer, kind): np.array([schema.neuron_uid(m.name, layer, kind, i) for i in range(n)], dtype=object)
                for layer in range(m.spec.n_layers)
                for kind, n in (("mlp", m.spec.d_mlp), ("attn_o", m.spec.n_heads * m.spec.d_head))
            },
        )

    # -- validation: nothing is written unless every prompt is good ------------------------------------
    def prepare(self, spec: PromptSpec, position: int | None = None) -> Prepared:
        m = self.loaded
        if not spec.prompt.strip():
            raise InputError(f"{spec.where}: the prompt is empty")
        ids = m.tokenizer(spec.prompt).input_ids
        if len(ids) > m.spec.n_ctx:
            raise InputError(f"{spec.where}: the prompt has {len(ids)} tokens; {m.name} takes at most {m.spec.n_ctx}")
        pos = len(ids) - 1 if position is None else position
        if pos < 0:
            pos += len(ids)
        if not 0 <= pos < len(ids):
            raise InputError(f"{spec.where}: position {position} is outside the prompt's {len(ids)} tokens")
        target_id = None if spec.target is None else self.token_id(spec.target, spec.where)
        settings = {"position": pos, "target_id": target_id, "top_k": self.top_k, "promotes_k": self.promotes_k,
                    "schema": schema.SCHEMA_VERSION}
        key = json.dumps({"model": m.name, "revision": m.revision, "prompt": spec.prompt, **settings}, sort_keys=True)
        uid = schema.pass_uid(m.name, hashlib.sha256(key.encode()).hexdigest())
        return Prepared(spec, ids, pos, target_id, settings, uid)

    def token_id(self, text: str, where: str = "--target") -> int:
        ids = self.loaded.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            pieces = ", ".join(repr(str(self.tables.texts[i])) for i in ids) or "nothing"
            raise InputError(f"{where}: target {text!r} is {len(ids)} tokens ({pieces}) for "
                             f"{self.loaded.name}; give a single token, e.g. {pieces.split(', ')[0]}")
        return ids[0]

    def static(self, progress: Callable[[int, int], None] = lambda i, n: None) -> ModelGraph:
        return static_graph(self.loaded, self.weights, self.lens, self.tables.texts, self.top_k, progress)

    # -- passes ---------------------------------------------------------------------------------------
    def run(self, store: Store, p: Prepared) -> PassResult:
        return self.run_batch(store, [p])[0]

    def run_batch(self, store: Store, prepared: list[Prepared]) -> list[PassResult]:
        """Compute the passes not yet complete in the store, then write them (the worker overlaps the two
        steps of consecutive batches instead: Worker.run)."""
        return self.write(store, self.compute(prepared, self.stored(store, prepared)))

    def stored(self, store: Store, prepared: list[Prepared]) -> list[bool]:
        """Which passes need no work: complete in the store already, or a repeat of one before it."""
        seen: set[str] = set()
        out = []
        for p in prepared:
            out.append(p.uid in seen or bool(store.pass_status(p.uid)))
            seen.add(p.uid)
        return out

    def compute(self, prepared: list[Prepared], skip: list[bool]) -> Computed:
        """Capture and lay out the passes not skipped, and annotate all their nodes in one projection
        (circuits shared by the passes are factored once: see LogitLens.stats). Touches no store, so that
        it can run while the batch before is written."""
        results: list[PassResult | None] = [None] * len(prepared)
        todo: list[tuple[int, Layout, dict[str, float]]] = []
        for i, (p, done) in enumerate(zip(prepared, skip)):
            if done:
                results[i] = PassResult(p.uid, p.spec.prompt, written=False)
            else:
                todo.append((i, *self.lay_out(p)))
        shared: dict[str, float] = {}
        stats = annotate([b for _, b, _ in todo], self.lens, self.top_k, shared) if todo else []
        for _, _, timings in todo:
            timings["project"] = shared["project"] / len(todo)  # shared work, split evenly
        return Computed(results, todo, stats)

    def write(self, store: Store, computed: Computed) -> list[PassResult]:
        """Assemble the computed passes' tables and write them, up to WRITE_ROWS rows per transaction. A pass
        another writer stored meanwhile reports written=False, as if it had been stored before."""
        results = computed.results
        group: list[tuple[int, Layout, dict[str, float], PassGraph]] = []

        def flush() -> None:
            t0 = time.perf_counter()
            written = store.write_passes([graph for *_, graph in group])
            write = (time.perf_counter() - t0) / len(group)
            for (i, b, timings, graph), w in zip(group, written):
                timings["write"] = write
                row = b.pass_row
                results[i] = PassResult(row["uid"], row["prompt"], w, row["prediction"], row["prediction_prob"],
                                        timings, graph.n_rows)
            group.clear()

        rows = 0  # in the group
        for (i, b, timings), s in zip(computed.todo, computed.stats):
            t0 = time.perf_counter()
            graph = assemble(b, s, self.tables, self.promotes_k)
            timings["build"] += time.perf_counter() - t0
            if group and rows + graph.n_rows > WRITE_ROWS:
                flush()
                rows = 0
            group.append((i, b, timings, graph))
            rows += graph.n_rows
        if group:
            flush()
        return results  # type: ignore[return-value]  # every slot is filled

    def lay_out(self, p: Prepared) -> tuple[Layout, dict[str, float]]:
        """Run the pass and lay out its graph, not yet annotated; with the seconds each step took."""
        with one_torch_thread():  # whatever the write beside it does, so the same on every run (ingest/cores.py)
            t0 = time.perf_counter()
            cap = capture(self.loaded, p.token_ids[: p.position + 1])
            t1 = time.perf_counter()
            b = layout(self.loaded.spec, self.weights, cap, self.tables, self._pass_row(p, cap),
                       cap.logits.argmax().item() if p.target_id is None else p.target_id)
        return b, {"forward": t1 - t0, "build": time.perf_counter() - t1}

    def _pass_row(self, p: Prepared, cap: Capture) -> dict:
        prediction_id = int(cap.logits.argmax())
        target_id = prediction_id if p.target_id is None else p.target_id
        probs = cap.logits.double().softmax(-1)
        texts = self.tables.texts
        return {
            "uid": p.uid, "model": self.loaded.name, "prompt": p.spec.prompt,
            "tokens": [str(texts[i]) for i in p.token_ids], "token_ids": p.token_ids, "position": p.position,
            "target": str(texts[target_id]), "target_id": target_id, "target_prob": float(probs[target_id]),
            "prediction": str(texts[prediction_id]), "prediction_id": prediction_id,
            "prediction_prob": float(probs[prediction_id]), "settings": json.dumps(p.settings, sort_keys=True),
            "lensgraph_version": lensgraph.__version__,
        }
