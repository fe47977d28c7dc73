"""The logit lens and the static neuron annotations against naive, one-vector-at-a-time computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ingest import lens as lens_module
from ingest.lens import Factored, LensStats, LogitLens
from ingest.scan import Scan, scan
from tests.conftest import Ingested


def _naive(lens: LogitLens, x: torch.Tensor) -> torch.Tensor:
    logits = (lens.final_norm(x[None]) @ lens.W_U)[0].double() + (0 if lens.b_U is None else lens.b_U)
    if lens.softcap is not None:
        logits = lens.softcap * torch.tanh(logits / lens.softcap)
    return torch.softmax(logits, -1)


def test_stats_match_naive_softmax_across_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lens_module, "TILE_ROWS", 64)
    monkeypatch.setattr(lens_module, "TILE", 128)  # the vocabulary in 3 tiles, the last one partial
    torch.manual_seed(0)
    d, vocab = 16, 300
    lens = LogitLens(torch.nn.LayerNorm(d), torch.randn(d, vocab), torch.randn(vocab))
    with torch.no_grad():
        lens.final_norm.bias.normal_()
        n = 2 * 64
        X = torch.randn(n + 7, d)  # rows in 3 jobs, the last one partial
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


# -- the compiled scan and the factored projection against direct computations ----------------------------
def test_scan_matches_torch_on_every_statistic() -> None:
    torch.manual_seed(2)
    logits = torch.randn(40, 3001) * torch.logspace(-1, 1.5, 40)[:, None]  # flat to very peaked rows
    logits[0, 100:110] = logits[0].max() + 1  # ten tied maxima: the lower ids come first
    logits[1, 60:70] = logits[1].min() - 1  # ten tied minima, across two of the scan's blocks
    tracked = torch.randint(0, 3001, (40, 2))
    tracked[0, 0] = 105
    lse, entropy, top_i, top_v, bot_i, bot_v, ranks = scan(logits.numpy(), 7, tracked.numpy())
    L = logits.double()
    p = L.softmax(-1)
    np.testing.assert_allclose(lse, L.logsumexp(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(entropy, -(p * p.log()).sum(-1).numpy(), rtol=1e-5, atol=1e-7)
    assert top_i[0].tolist() == list(range(100, 107))
    assert bot_i[1].tolist() == list(range(60, 67))
    assert top_i[1].tolist() == logits[1].topk(7).indices.tolist()
    for r in range(2, 40):
        assert top_i[r].tolist() == logits[r].topk(7).indices.tolist()
        assert bot_i[r].tolist() == logits[r].topk(7, largest=False).indices.tolist()
    np.testing.assert_array_equal(top_v, logits.topk(7).values.numpy())
    np.testing.assert_array_equal(bot_v, logits.topk(7, largest=False).values.numpy())
    expected = (logits[:, None, :] > logits.gather(1, tracked)[:, :, None]).sum(-1) + 1
    np.testing.assert_array_equal(ranks, expected.numpy())
    assert ranks[0, 0] == 1  # tied with the maximum: nothing is strictly higher


@pytest.mark.parametrize("parallel", [True, False])
def test_scan_by_tiles_matches_the_scan_of_whole_rows(parallel: bool) -> None:
    torch.manual_seed(4)
    logits = torch.randn(30, 3001) * torch.logspace(-1, 1.5, 30)[:, None]
    logits[0, 995:1010] = logits[0].max() + 1  # tied maxima across the tile boundary at 1000
    logits[1, 1990:2005] = logits[1].min() - 1  # tied minima across the one at 2000
    logits[2, 2500] = logits[2].max() + 50  # the maximum arrives in the last tile: the sums are re-based
    tracked = torch.randint(0, 3001, (30, 2))
    L, ids = logits.numpy(), tracked.numpy()
    # the tracked logits as a separate product might give them: a rounding below their value in the tiles
    own = np.nextafter(np.take_along_axis(L, ids, 1), np.float32(-np.inf))
    state = Scan.start(own, ids, 7)
    for start in range(0, 3001, 1000):
        state.fold(np.ascontiguousarray(L[:, start:start + 1000]), start, parallel)
    whole = scan(L, 7, ids)
    tiled = state.result()
    for name, a, b in zip(("lse", "entropy"), whole, tiled):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
    for name, a, b in zip(("top ids", "top logits", "bottom ids", "bottom logits", "ranks"), whole[2:], tiled[2:]):
        np.testing.assert_array_equal(b, a, err_msg=name)  # a tracked token is never counted above itself
    assert tiled[2][0].tolist() == list(range(995, 1002)) and tiled[4][1].tolist() == list(range(1990, 1997))


class _NotAffine(torch.nn.Module):
    """A final norm that is not scale · linear + bias: the lens must fall back to direct projection."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def _assert_same_annotations(lens: LogitLens, X: torch.Tensor, a: LensStats, b: LensStats) -> None:
    """a and b annotate the same rows up to float rounding: where ids or ranks differ, the tokens involved
    must be tied to within that rounding in the direct logits."""
    np.testing.assert_allclose(a.norm, b.norm, rtol=1e-5)
    np.testing.assert_allclose(a.entropy, b.entropy, rtol=1e-3, atol=1e-6)
    for x, y in ((a.top_probs, b.top_probs), (a.bottom_probs, b.bottom_probs), *zip(a.probs.values(),
                                                                                      b.probs.values())):
        np.testing.assert_allclose(x, y, rtol=2e-3, atol=1e-12)
    differ = ((a.top_ids != b.top_ids).any(1) | (a.bottom_ids != b.bottom_ids).any(1)
              | np.any([a.ranks[t] != b.ranks[t] for t in a.ranks], 0))
    assert differ.mean() < 0.05, f"{differ.sum()} of {len(differ)} rows differ"
    for r in np.flatnonzero(differ):
        logits = lens.logits(X[r:r + 1])[0].double()
        tol = 1e-4 * (1 + float(logits.abs().max()))
        for ids_a, ids_b in ((a.top_ids[r], b.top_ids[r]), (a.bottom_ids[r], b.bottom_ids[r])):
            np.testing.assert_allclose(logits[ids_a].numpy(), logits[ids_b].numpy(), atol=tol)


@pytest.mark.parametrize("norm,b_U,softcap", [("layernorm", True, None), ("rmsnorm", False, None),
                                              ("rmsnorm", False, 3.0), ("none", False, None)])
def test_factored_projection_matches_the_direct_one(monkeypatch: pytest.MonkeyPatch, norm: str, b_U: bool,
                                                    softcap: float | None) -> None:
    torch.manual_seed(3)
    d, d_head, H, R, vocab = 32, 4, 3, 50, 500
    final_norm = {"layernorm": torch.nn.LayerNorm(d), "rmsnorm": torch.nn.RMSNorm(d, eps=1e-6),
                  "none": _NotAffine()}[norm]
    with torch.no_grad():
        for p in final_norm.parameters():
            p.normal_()
    lens = LogitLens(final_norm, torch.randn(d, vocab), torch.randn(vocab) if b_U else None, softcap)
    A, U = torch.randn(H, d_head, d), torch.randn(H, R, d_head)
    X = torch.cat([torch.randn(7, d), torch.bmm(U, A).reshape(H * R, d)])
    block = Factored(("layer", "W_O"), A, U, np.arange(7, 7 + H * R))
    tracked = {"t": np.arange(len(X)) % vocab}
    with torch.no_grad():
        direct = lens.stats(X, 5, tracked)
        monkeypatch.setattr(lens_module, "FACTOR_MARGIN", 1e9)
        used, original = [], LogitLens._factored
        monkeypatch.setattr(LogitLens, "_factored", lambda self, *args: used.append(1) or original(self, *args))
        factored = lens.stats(X[:7], 5, tracked, [block])  # the block builds its own rows
    assert used == ([] if norm == "none" else [1])  # the circuit was used exactly when the norm allows
    _assert_same_annotations(lens, X, direct, factored)


def test_factoring_is_chosen_only_when_it_saves_flops() -> None:
    lens = LogitLens(torch.nn.RMSNorm(64), torch.randn(64, 1000), None)
    block = lambda R: Factored((0, "W_O"), torch.randn(4, 16, 64), torch.randn(4, R, 16), np.arange(4 * R))  # noqa: E731
    # factored: H·d_head·(d_model + R) multiply-adds per token against R·H·d_model direct
    assert not lens._worth_factoring([block(8)])
    assert lens._worth_factoring([block(200)])
    assert lens._worth_factoring([block(100), block(100)])  # blocks of one circuit add up
