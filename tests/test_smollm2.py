"""Acceptance on real weights: the bundled SmolLM2-135M (Llama family, grouped-query attention)."""

from __future__ import annotations

import pytest

from queries import run
from tests.conftest import FRANCE, IOI, Ingested


def _pass(smol: Ingested, prompt: str) -> dict:
    return smol.store.rows("MATCH (p:Pass) WHERE p.uid = $u RETURN p.prediction AS prediction, "
                           "p.prediction_prob AS prob, p.target AS target", {"u": smol.passes[prompt].uid})[0]


def test_france_predicts_paris(smol: Ingested) -> None:
    row = _pass(smol, FRANCE)
    assert row["prediction"] == " Paris" and row["target"] == " Paris"
    assert row["prob"] == pytest.approx(0.77, abs=0.02)


def test_ioi_predicts_mary(smol: Ingested) -> None:
    row = _pass(smol, IOI)
    assert row["prediction"] == " Mary"
    assert row["prob"] > 0.5


def test_a_late_head_ranks_paris_in_its_top_10(smol: Ingested) -> None:
    n_layers = smol.ingestor.loaded.spec.n_layers
    rows = run(smol.store, "target-heads", k=10, **{"pass": smol.passes[FRANCE].uid})
    assert all(r["target"] == " Paris" and r["rank"] <= 10 for r in rows)
    late = [r for r in rows if r["layer"] >= 2 * n_layers // 3]
    assert late, rows
    # the same heads, seen through the PROMOTES edges (top 5): consistent with the stored ranks
    promoting = run(smol.store, "heads-promoting", token=" Paris", **{"pass": smol.passes[FRANCE].uid})
    assert {(r["layer"], r["head"]) for r in promoting} == {(r["layer"], r["head"]) for r in rows if r["rank"] <= 5}


def test_the_trajectory_of_paris_ends_at_rank_1(smol: Ingested) -> None:
    rows = smol.store.rows(
        "MATCH (h:HiddenState) WHERE h.pass = $u AND h.kind = 'resid_post' RETURN h.layer AS layer, "
        "h.target_rank AS rank ORDER BY layer", {"u": smol.passes[FRANCE].uid})
    assert [r["layer"] for r in rows] == list(range(smol.ingestor.loaded.spec.n_layers))
    assert rows[-1]["rank"] == 1
    assert rows[0]["rank"] > 100  # the embedding of ' is' is not yet ' Paris'
