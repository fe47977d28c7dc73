"""Acceptance on real weights: the bundled Gemma 3 270M (262k vocabulary, 4 heads / 1 KV head, post-norms)."""

from __future__ import annotations

import torch

from lensgraph import schema
from tests.conftest import JAPAN, Ingested


def test_japan_is_predicted_as_the_model_predicts_it(gemma: Ingested) -> None:
    p = gemma.passes[JAPAN]
    logits = gemma.ingestor.loaded.model(torch.tensor([p.token_ids])).logits[0, -1]
    row = gemma.store.rows("MATCH (p:Pass) WHERE p.uid = $u RETURN p.prediction AS prediction, "
                           "p.prediction_id AS id, p.tokens AS tokens", {"u": p.uid})[0]
    assert row["id"] == int(logits.argmax())
    assert row["prediction"] == " Tokyo"
    assert row["tokens"][0] == "<bos>"  # Gemma's tokenizer prepends it; the graph keeps it


def test_the_last_layers_lens_is_the_models_output(gemma: Ingested) -> None:
    p = gemma.passes[JAPAN]
    rows = {r["kind"]: r for r in gemma.store.rows(
        "MATCH (h:HiddenState) WHERE h.pass = $u AND (h.kind = 'final' OR (h.kind = 'resid_post' AND h.layer = $l)) "
        "RETURN h.kind AS kind, h.top_tokens AS top, h.top_probs AS probs",
        {"u": p.uid, "l": gemma.ingestor.loaded.spec.n_layers - 1})}
    assert rows["final"]["top"][0] == " Tokyo"
    assert rows["resid_post"]["top"] == rows["final"]["top"]  # the same vector, read the same way
    assert schema.state_uid(p.uid, None, "final").endswith("/final")


def test_every_kv_head_is_materialised_per_query_head(gemma: Ingested) -> None:
    """Grouped-query attention with 1 KV head: key/value nodes exist for each of the 4 query heads."""
    p = gemma.passes[JAPAN]
    rows = gemma.store.rows(
        "MATCH (h:HiddenState) WHERE h.pass = $u AND h.layer = 0 AND h.kind = 'value' "
        "RETURN h.head AS head, count(*) AS n ORDER BY head", {"u": p.uid})
    assert rows == [{"head": h, "n": len(p.token_ids)} for h in range(4)]
