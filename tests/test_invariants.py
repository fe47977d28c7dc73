"""The stored graph against independent computations: the model's own logits, the modules' own outputs.

Every architecture family runs the same invariants: each with random weights, and the bundled SmolLM2-135M
(Llama) and Gemma 3 270M with real weights. A new adapter passes these or it is not done.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ingest.capture import capture
from lensgraph import schema
from tests.conftest import RANDOM_FAMILIES, Ingested

BUNDLED = {"smollm2-135m": "smol", "gemma3-270m": "gemma"}


@pytest.fixture(params=RANDOM_FAMILIES + list(BUNDLED))
def ingested(request: pytest.FixtureRequest) -> Ingested:
    if request.param in BUNDLED:
        return request.getfixturevalue(BUNDLED[request.param])
    return request.getfixturevalue("families")[request.param]



def _one(store, cypher: str, **params) -> dict:  # noqa: ANN001
    rows = store.rows(cypher, params)
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("which", [0, 1])
def test_prediction_and_final_lens_reproduce_the_models_logits(ingested: Ingested, which: int) -> None:
    p = list(ingested.passes.values())[which]
    model = ingested.ingestor.loaded.model
    probs = model(torch.tensor([p.token_ids[: p.position + 1]])).logits[0, -1].double().softmax(-1)
    top_p, top_i = probs.topk(10)
    row = _one(ingested.store, "MATCH (p:Pass) WHERE p.uid = $u RETURN p.prediction_id AS id, "
               "p.prediction_prob AS prob, p.complete AS complete", u=p.uid)
    assert row["complete"] is True
    assert row["id"] == int(top_i[0])
    assert row["prob"] == pytest.approx(float(top_p[0]), abs=1e-5)
    final = _one(ingested.store, "MATCH (h:HiddenState) WHERE h.uid = $u RETURN h.top_tokens AS tokens, "
                 "h.top_probs AS probs, h.pred_rank AS rank", u=schema.state_uid(p.uid, None, "final"))
    texts = ingested.ingestor.tables.texts
    assert final["tokens"] == [texts[i] for i in top_i.tolist()]
    np.testing.assert_allclose(final["probs"], top_p.numpy(), atol=1e-5)
    assert final["rank"] == 1


def _coefs(ingested: Ingested, uid: str, layer: int, kind: str, n: int) -> torch.Tensor:
    rows = ingested.store.rows(
        "MATCH (h:HiddenState)-[a:ACTIVATES]->(n:Neuron) WHERE h.pass = $u AND n.layer = $l AND n.kind = $k "
        "RETURN n.idx AS i, a.coef AS c", {"u": uid, "l": layer, "k": kind})
    assert sorted(r["i"] for r in rows) == list(range(n)), "every neuron has its ACTIVATES row"
    coef = torch.zeros(n, dtype=torch.float64)
    for r in rows:
        coef[r["i"]] = r["c"]
    return coef


@pytest.mark.parametrize("which", [0, 1])
def test_residual_stream_sums_back_from_stored_parts(ingested: Ingested, which: int) -> None:
    p = list(ingested.passes.values())[which]
    loaded, spec = ingested.ingestor.loaded, ingested.ingestor.loaded.spec
    cap = capture(loaded, p.token_ids[: p.position + 1])  # the modules' own inputs and outputs
    pos = p.position
    norms = {r["uid"]: r["norm"] for r in ingested.store.rows(
        "MATCH (h:HiddenState) WHERE h.pass = $u RETURN h.uid AS uid, h.norm AS norm", {"u": p.uid})}
    blocks = loaded.adapter.blocks(loaded.model)
    for layer, (c, w) in enumerate(zip(cap.layers, ingested.ingestor.weights)):
        tol = dict(atol=2e-4 * float(c.resid_post[pos].abs().max()) + 1e-5, rtol=1e-4)
        # resid_pre + attn_out + mlp_out = resid_post (the block's own output), sequential or parallel
        torch.testing.assert_close(c.resid_pre[pos] + c.attn_out[pos] + c.mlp_out[pos], c.resid_post[pos], **tol)
        # attention output = sum_i coef_i W_O[i] + b_O, with the stored W_O-neuron coefficients
        coef = _coefs(ingested, p.uid, layer, "attn_o", spec.n_heads * spec.d_head)
        attn_sum = coef @ w.W_O.flatten(0, 1).double() + w.b_O.double()
        torch.testing.assert_close(attn_sum, c.attn_sum[pos].double(), **tol)
        # MLP output = sum_i coef_i W_out[i] + b_out, with the stored MLP-neuron coefficients
        coef = _coefs(ingested, p.uid, layer, "mlp", spec.d_mlp)
        mlp_sum = coef @ w.W_out.double() + w.b_out.double()
        torch.testing.assert_close(mlp_sum, c.mlp_sum[pos].double(), **tol)
        points = loaded.adapter.points(blocks[layer])
        if spec.post_norms:  # Gemma: the residual receives the normed sums
            torch.testing.assert_close(points.post_attn_norm(attn_sum.float()), c.attn_out[pos], **tol)
            torch.testing.assert_close(points.post_mlp_norm(mlp_sum.float()), c.mlp_out[pos], **tol)
        else:
            torch.testing.assert_close(attn_sum.float(), c.attn_out[pos], **tol)
            torch.testing.assert_close(mlp_sum.float(), c.mlp_out[pos], **tol)
        # each head = sum over sources of (stored attention score) x (its value through W_O[h])
        edges = ingested.store.rows(
            "MATCH (v:HiddenState)-[f:FLOWS_TO]->(h:HiddenState) WHERE h.pass = $u AND h.layer = $l "
            "AND f.kind = 'value' RETURN v.head AS h, v.position AS s, f.score AS a", {"u": p.uid, "l": layer})
        assert len(edges) == spec.n_heads * (pos + 1)
        attn = torch.zeros(spec.n_heads, pos + 1, dtype=torch.float64)
        for e in edges:
            attn[e["h"], e["s"]] = e["a"]
        torch.testing.assert_close(attn.sum(-1), torch.ones(spec.n_heads, dtype=torch.float64), atol=1e-5, rtol=0)
        kv = torch.arange(spec.n_heads) // spec.group
        values = torch.einsum("shd,hdm->hsm", c.v[: pos + 1, kv].double(), w.W_O.double())
        heads = torch.einsum("hd,hdm->hm", c.concat[pos].reshape(spec.n_heads, -1).double(), w.W_O.double())
        torch.testing.assert_close(torch.einsum("hs,hsm->hm", attn, values), heads, **tol)
        # stored norms are the norms of these very vectors
        for kind in ("resid_pre", "attn_out", "mlp_out", "resid_post"):
            uid = schema.state_uid(p.uid, layer, kind)
            assert norms[uid] == pytest.approx(float(getattr(c, kind)[pos].norm()), rel=1e-4)
        assert norms[schema.state_uid(p.uid, layer, "head", 0)] == pytest.approx(float(heads[0].norm()), rel=1e-4)


@pytest.mark.parametrize("which", [0, 1])
def test_counts_equal_the_schema_formula(ingested: Ingested, which: int) -> None:
    p = list(ingested.passes.values())[which]
    s = ingested.ingestor.loaded.spec
    want = schema.expected_counts(s.n_layers, s.n_heads, s.d_head, s.d_mlp, p.position + 1,
                                  ingested.ingestor.promotes_k, parallel=s.block == "parallel")
    store, u = ingested.store, {"u": p.uid}
    assert _one(store, "MATCH (h:HiddenState) WHERE h.pass = $u RETURN count(*) AS n", **u)["n"] == want.nodes
    # HAS_STATE reaches exactly the pass's own states
    owned = _one(store, "MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState) WHERE p.uid = $u "
                 "RETURN count(*) AS n, count(DISTINCT h.pass) AS passes, min(h.pass) AS pass", **u)
    assert owned == {"n": want.nodes, "passes": 1, "pass": p.uid}
    for rel, n in (("FLOWS_TO", want.flows), ("ACTIVATES", want.activates), ("PROMOTES", want.promotes)):
        got = _one(store, f"MATCH (h:HiddenState)-[r:{rel}]->() WHERE h.pass = $u RETURN count(*) AS n", **u)["n"]
        assert got == n, rel
    assert want.activates == s.n_layers * (s.d_mlp + s.n_heads * s.d_head)
