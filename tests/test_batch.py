"""Batched ingest: one projection for many passes, with circuits factored, equals one pass at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ingest import lens as lens_module
from ingest.graph import Layout, annotate
from ingest.lens import LogitLens
from ingest.pipeline import Ingestor
from ingest.prompts import PromptSpec
from lensgraph.store import open_store
from tests.conftest import FRANCE, IOI, JAPAN, RANDOM_FAMILIES, Ingested
from tests.test_lens import _assert_same_annotations


def _layouts(ingestor: Ingestor, prompts: list[str]) -> list[Layout]:
    return [ingestor.lay_out(ingestor.prepare(PromptSpec(p)))[0] for p in prompts]


def _vectors(b: Layout) -> torch.Tensor:
    """Every node's vector [N, d_model]: those the layout holds, and those its factored blocks build."""
    direct = np.ones(len(b.uids), bool)
    X = torch.empty(len(b.uids), b.vectors[0].shape[1])
    for f in b.factored:
        X[f.rows] = f.vectors()
        direct[f.rows] = False
    X[direct] = torch.cat(b.vectors)
    return X


def _compare(ingestor: Ingestor, layouts: list[Layout], monkeypatch: pytest.MonkeyPatch) -> int:
    """Annotate the passes one by one, directly, then together with every circuit factored; the number of
    circuits factored."""
    with torch.no_grad():
        singles = [annotate([b], ingestor.lens, ingestor.top_k)[0] for b in layouts]
        monkeypatch.setattr(lens_module, "FACTOR_MARGIN", 1e9)
        used, original = [], LogitLens._factored
        monkeypatch.setattr(LogitLens, "_factored", lambda self, *a: used.append(1) or original(self, *a))
        batched = annotate(layouts, ingestor.lens, ingestor.top_k)
        for b, one, many in zip(layouts, singles, batched):
            _assert_same_annotations(ingestor.lens, _vectors(b), one, many)
    return len(used)


@pytest.mark.parametrize("name", RANDOM_FAMILIES)
def test_batched_factored_annotations_equal_single_direct_ones(families: dict[str, Ingested], name: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ingestor = families[name].ingestor
    layouts = _layouts(ingestor, [FRANCE, IOI, JAPAN])
    # each layer's W_O (heads and values), W_Q (keys) and W_K (queries) circuits, shared by the three passes
    assert _compare(ingestor, layouts, monkeypatch) == 3 * ingestor.loaded.spec.n_layers


def test_batched_factored_annotations_on_smollm2(smol: Ingested, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real weights (d_model 576, vocab 49k): the circuits of the first and last layers only, to stay quick."""
    ingestor = smol.ingestor
    layouts = _layouts(ingestor, [FRANCE, IOI])
    last = ingestor.loaded.spec.n_layers - 1
    worth = LogitLens._worth_factoring  # the other layers' blocks are projected directly
    monkeypatch.setattr(LogitLens, "_worth_factoring", lambda self, blocks: blocks[0].key[0] in (0, last)
                        and worth(self, blocks))
    assert _compare(ingestor, layouts, monkeypatch) == 6


def test_a_batch_writes_what_single_passes_write(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    ing = tiny["random:gpt2-tiny"]
    store = open_store(str(tmp_path / "batch.lbug"))
    try:
        store.write_model(ing.ingestor.static())
        prepared = [ing.ingestor.prepare(PromptSpec(p)) for p in (FRANCE, IOI, FRANCE)]
        results = ing.ingestor.run_batch(store, prepared)
        assert [r.written for r in results] == [True, True, False]  # the repeat is written once
        for p in prepared[:2]:
            cypher = ("MATCH (h:HiddenState) WHERE h.pass = $p RETURN h.uid AS uid, h.top_probs AS probs, "
                      "h.entropy AS entropy ORDER BY uid")
            edges = ("MATCH (a:HiddenState)-[e:FLOWS_TO]->(b:HiddenState) WHERE a.pass = $p "
                     "RETURN a.uid AS src, b.uid AS dst, e.kind AS kind, e.rank AS rank ORDER BY src, dst, kind")
            mine, theirs = store.rows(cypher, {"p": p.uid}), ing.store.rows(cypher, {"p": p.uid})
            assert [r["uid"] for r in mine] == [r["uid"] for r in theirs]
            np.testing.assert_allclose([r["probs"] for r in mine], [r["probs"] for r in theirs], rtol=1e-3)
            np.testing.assert_allclose([r["entropy"] for r in mine], [r["entropy"] for r in theirs], rtol=1e-4)
            assert store.rows(edges, {"p": p.uid}) == ing.store.rows(edges, {"p": p.uid})
            assert store.pass_status(p.uid) is True
    finally:
        store.close()
