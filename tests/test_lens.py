"""The logit lens and the static neuron annotations against naive, one-vector-at-a-time computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ingest.lens import LogitLens
from tests.conftest import Ingested


def _naive(lens: LogitLens, x: torch.Tensor) -> torch.Tensor:
    logits = (lens.final_norm(x[None]) @ lens.W_U)[0].double() + (0 if lens.b_U is None else lens.b_U)
    if lens.softcap is not None:
        logits = lens.softcap * torch.tanh(logits / lens.softcap)
    return torch.softmax(logits, -1)


def test_stats_match_naive_softmax_across_chunks() -> None:
    torch.manual_seed(0)
    d, vocab = 16, 300
    lens = LogitLens(torch.nn.LayerNorm(d), torch.randn(d, vocab), torch.randn(vocab))
    with torch.no_grad():
        lens.final_norm.bias.normal_()
        n = lens.chunk
        X = torch.randn(n + 7, d)  # more than one chunk
        stats = lens.stats(X, 5, {"t": 17})
        for i in (0, n - 1, n, n + 6):
            p = _naive(lens, X[i])
            top_p, top_i = p.topk(5)
            assert stats.top_ids[i].tolist() == top_i.tolist()
            np.testing.assert_allclose(stats.top_probs[i], top_p.numpy(), rtol=1e-4)
            np.testing.assert_allclose(stats.bottom_probs[i], p.topk(5, largest=False).values.numpy(), rtol=1e-3,
                                       atol=1e-12)
            assert stats.entropy[i] == pytest.approx(float(-(p * p.log()).sum()), rel=1e-4)
            assert stats.ranks["t"][i] == int((p > p[17]).sum()) + 1
            assert stats.probs["t"][i] == pytest.approx(float(p[17]), rel=1e-4)
            assert stats.norm[i] == pytest.approx(float(X[i].norm()), rel=1e-6)


@pytest.mark.parametrize("softcap", [None, 3.0])
def test_negated_stats_match_projecting_minus_x_with_biases(softcap: float | None) -> None:
    """logits(-x) = 2c - logits(x) must hold with a LayerNorm bias, an unembedding bias and soft-capping."""
    torch.manual_seed(1)
    d, vocab = 16, 300
    lens = LogitLens(torch.nn.LayerNorm(d), torch.randn(d, vocab), torch.randn(vocab), softcap)
    with torch.no_grad():
        lens.final_norm.bias.normal_()
        lens.final_norm.weight.normal_()
        X = torch.randn(9, d)
        pos, neg = lens.signed_stats(X, 5)
        for i in range(len(X)):
            p = _naive(lens, -X[i])
            assert neg.top_ids[i].tolist() == p.topk(5).indices.tolist()
            np.testing.assert_allclose(neg.top_probs[i], p.topk(5).values.numpy(), rtol=1e-4)
            assert pos.top_ids[i].tolist() == _naive(lens, X[i]).topk(5).indices.tolist()


@pytest.mark.parametrize("name", ["random:gpt2-tiny", "random:llama-tiny"])
def test_negated_neuron_directions_match_a_direct_projection(tiny: dict[str, Ingested], name: str) -> None:
    """The two-sign trick (one matmul for +w and -w) against projecting -w directly."""
    ing = tiny[name]
    w = ing.ingestor.weights[1].W_out  # [d_mlp, d_model]
    rows = ing.store.rows(
        "MATCH (n:Neuron) WHERE n.model = $m AND n.layer = 1 AND n.kind = 'mlp' AND n.idx < 4 "
        "RETURN n.idx AS i, n.top_tokens AS pos, n.neg_top_tokens AS neg, n.neg_entropy AS neg_h, "
        "n.in_top_tokens AS inp ORDER BY i", {"m": name})
    texts = ing.ingestor.tables.texts
    lens = ing.ingestor.lens
    for r in rows:
        for sign, key in ((1, "pos"), (-1, "neg")):
            p = _naive(lens, sign * w[r["i"]])
            assert r[key] == [texts[j] for j in p.topk(10).indices.tolist()]
        p = _naive(lens, -w[r["i"]])
        assert r["neg_h"] == pytest.approx(float(-(p * p.log()).sum()), rel=1e-4)
        p = _naive(lens, ing.ingestor.weights[1].W_in[:, r["i"]])
        assert r["inp"] == [texts[j] for j in p.topk(10).indices.tolist()]
