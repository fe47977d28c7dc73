"""The query modules on real SmolLM2-135M passes: what a researcher would check first.

`smol` holds the France and IOI passes; `smol_facts` 30 prompts of data/known_facts.json (cross-prompt).
"""

from __future__ import annotations

import pytest

from lensgraph import schema
from queries import run
from queries.subgraphs import flow_routes, visit_graph
from tests.conftest import FRANCE, IOI, Ingested

pytestmark = pytest.mark.slow


def _uid(ingested: Ingested, prompt: str) -> str:
    return ingested.passes[prompt].uid


def test_heads_promoting_paris_include_a_late_layer_head(smol: Ingested) -> None:
    rows = run(smol.store, "heads-promoting", token=" Paris", **{"pass": _uid(smol, FRANCE)})
    n_layers = smol.ingestor.loaded.spec.n_layers
    assert any(r["layer"] >= n_layers - 5 for r in rows), rows
    summary = run(smol.store, "heads-promoting-summary", token=" Paris", model="smollm2-135m")
    assert {(r["layer"], r["head"]) for r in summary} >= {(r["layer"], r["head"]) for r in rows}
    assert all(r["frac"] == pytest.approx(r["passes"] / 2) for r in summary)  # two passes searched


def test_ioi_negative_movers_suppress_mary_through_marys_value(smol: Ingested) -> None:
    """VISIT's IOI finding: late heads push ' Mary' down, and the ' Mary' value carries that meaning."""
    ioi = _uid(smol, IOI)
    movers = run(smol.store, "heads-suppressing", n=100, **{"pass": ioi})
    assert movers and all(r["target"] == " Mary" and r["bottom_rank"] <= 100 for r in movers)
    assert all(r["vs_uniform"] < 1e-3 for r in movers)  # far below uniform
    vocab = smol.ingestor.loaded.spec.vocab_size
    for r in movers:  # the stored rank, read directly
        state = schema.state_uid(ioi, r["layer"], "head", r["head"])
        rank = smol.store.rows("MATCH (h:HiddenState) WHERE h.uid = $u RETURN h.target_rank AS r", {"u": state})
        assert vocab - rank[0]["r"] + 1 == r["bottom_rank"]
    # for at least one mover, the value from a ' Mary' position carries most of the head's output
    carriers = []
    for r in movers:
        values = run(smol.store, "value-provenance", layer=r["layer"], head=r["head"], **{"pass": ioi})
        assert sum(v["attention"] for v in values) == pytest.approx(1.0, abs=1e-5)
        assert sum(v["share"] for v in values) == pytest.approx(1.0)
        carriers.append(values[0]["source_token"])
    assert " Mary" in carriers, carriers


def test_trajectory_ends_at_the_models_prediction(smol: Ingested) -> None:
    france = _uid(smol, FRANCE)
    rows = run(smol.store, "trajectory", **{"pass": france})
    spec = smol.ingestor.loaded.spec
    assert [r["layer"] for r in rows] == list(range(spec.n_layers))
    last = rows[-1]
    assert last["pred_rank"] == 1 and last["top_token"] == " Paris" == last["prediction"]
    prob = smol.store.rows("MATCH (p:Pass) WHERE p.uid = $u RETURN p.prediction_prob AS p", {"u": france})[0]["p"]
    assert last["pred_prob"] == pytest.approx(prob, abs=1e-5)  # the lens of the last residual is the output
    assert rows[0]["pred_rank"] > 100  # ' Paris' emerges late, not at the embedding
    mean = run(smol.store, "trajectory-mean", model="smollm2-135m")
    assert mean[-1]["pred_top1"] == 1.0 and mean[-1]["passes"] == 2
    assert mean[-1]["mean_pred_prob"] == pytest.approx(sum(
        run(smol.store, "trajectory", **{"pass": _uid(smol, p)})[-1]["pred_prob"] for p in (FRANCE, IOI)) / 2)


def test_visit_graph_has_the_schema_shape(smol: Ingested) -> None:
    france, spec = _uid(smol, FRANCE), smol.ingestor.loaded.spec
    sources = smol.passes[FRANCE].position + 1
    g = visit_graph(smol.store, france, first=27, last=29, k=2, k_attn=3, k_mlp=4)
    states = [n for n in g.nodes if n["kind"] not in schema.NEURON_KINDS]
    neurons = [n for n in g.nodes if n["kind"] in schema.NEURON_KINDS]
    per_layer = 8 + spec.n_heads * (2 + 2 * min(2, sources))  # singles, query + head, 2 keys + 2 values
    assert len(states) == 3 * per_layer + 1  # + final
    assert len(neurons) == 3 * (3 + 4)
    uids = {n["uid"] for n in g.nodes}
    assert all(e["source"] in uids and e["target"] in uids for e in g.edges)
    # visit-edges keeps exactly the FLOWS_TO edges among the kept states
    among = {(e["source"], e["target"]) for e in run(smol.store, "flows-among", **{"pass": france, "first": 27, "last": 29})
             if e["source"] in uids and e["target"] in uids}
    assert {(e["source"], e["target"]) for e in g.edges if e["kind"] != "activates"} == among
    # the kept values of a head are its largest attention scores, read from the full graph
    head = schema.state_uid(france, 29, "head", 1)
    scores = sorted((r["a"] for r in smol.store.rows(
        "MATCH (v:HiddenState)-[f:FLOWS_TO]->(h:HiddenState) WHERE h.uid = $u AND f.kind = 'value' "
        "RETURN f.score AS a", {"u": head})), reverse=True)
    kept = sorted((e["score"] for e in g.edges if e["target"] == head and e["kind"] == "value"), reverse=True)
    assert kept == pytest.approx(scores[:2])


def test_key_and_value_ranks_follow_attention_then_source_position(smol: Ingested) -> None:
    """docs/SCHEMA.md: into a query (head), its read (query) edge ranks 1, then keys (values) by attention, the
    earlier source first on a tie; visit-states keeps a key or value by this rank alone."""
    rows = smol.store.rows(
        "MATCH (p:Pass)-[:HAS_STATE]->(s:HiddenState)-[f:FLOWS_TO]->(t:HiddenState) "
        "WHERE p.uid = $u AND f.kind IN ['key', 'value'] "
        "RETURN t.uid AS target, f.kind AS kind, s.position AS position, f.score AS score, f.rank AS rank",
        {"u": _uid(smol, IOI)})
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["kind"]), []).append(r)
    assert len(groups) == 2 * smol.ingestor.loaded.spec.n_layers * smol.ingestor.loaded.spec.n_heads
    for group in groups.values():
        ordered = sorted(group, key=lambda r: (-r["score"], r["position"]))
        assert [r["rank"] for r in ordered] == list(range(2, len(group) + 2))


def test_flow_routes_reach_the_output_and_cover_the_graph_at_tau_zero(smol: Ingested) -> None:
    france, spec = _uid(smol, FRANCE), smol.ingestor.loaded.spec
    sources = smol.passes[FRANCE].position + 1
    everything = flow_routes(smol.store, france, tau=0.0)
    want = schema.expected_counts(spec.n_layers, spec.n_heads, spec.d_head, spec.d_mlp, sources, 5)
    assert len(everything.edges) == want.flows - spec.n_layers * spec.n_heads * sources  # all but key edges
    routes = flow_routes(smol.store, france, tau=0.2)
    assert 0 < len(routes.edges) < len(everything.edges)
    assert min(e["score"] for e in routes.edges) >= 0.2
    final = schema.state_uid(france, None, "final")
    assert final in {n["uid"] for n in routes.nodes}
    feeds = {e["source"] for e in routes.edges}
    assert all(n["uid"] in feeds for n in routes.nodes if n["uid"] != final)  # every node leads on


def test_norm_filter_and_intersection_agree_with_the_stored_lists(smol: Ingested) -> None:
    france = _uid(smol, FRANCE)
    rows = run(smol.store, "norm-filter", **{"pass": france})
    assert len(rows) == 2 * smol.ingestor.loaded.spec.n_layers
    tops = {r["uid"]: r["top_tokens"] for r in smol.store.rows(
        "MATCH (h:HiddenState) WHERE h.pass = $p RETURN h.uid AS uid, h.top_tokens AS top_tokens", {"p": france})}
    for r in rows:
        out = tops[schema.state_uid(france, r["layer"], r["norm"])]
        into = tops[schema.state_uid(france, r["layer"], "resid_pre" if r["norm"] == "ln1" else "resid_mid")]
        assert set(r["raised"]) == set(out) - set(into) and set(r["lowered"]) == set(into) - set(out)
        if r["target_prob_in"] > 0 and r["target_prob_out"] > 0:
            assert r["target_gain"] == pytest.approx(r["target_prob_out"] / r["target_prob_in"])
        else:  # a probability that underflowed to 0: no gain
            assert r["target_gain"] is None
    # intersection of each head with attn_out, recomputed from the top-5 lists
    layers = run(smol.store, "intersection", a="head", b="attn_out", k=5, **{"pass": france})
    for r in layers[-3:]:
        attn = set(tops[schema.state_uid(france, r["layer"], "attn_out")][:5])
        heads = [set(tops[schema.state_uid(france, r["layer"], "head", h)][:5])
                 for h in range(smol.ingestor.loaded.spec.n_heads)]
        assert r["score"] == pytest.approx(sum(len(h & attn) for h in heads) / (5 * len(heads)))


def test_pass_diff_of_a_pass_with_itself_is_zero(smol: Ingested) -> None:
    france = _uid(smol, FRANCE)
    same = run(smol.store, "pass-diff", a=france, b=france, kind="head")
    assert len(same) == smol.ingestor.loaded.spec.n_layers * smol.ingestor.loaded.spec.n_heads
    assert all(r["d_target_prob"] == 0 and r["shared_top"] == 5 for r in same)
    other = run(smol.store, "pass-diff", a=france, b=_uid(smol, IOI), kind="resid_post")
    assert len(other) == smol.ingestor.loaded.spec.n_layers
    assert other[-1]["top_a"][0] == " Paris" and other[-1]["top_b"][0] == " Mary"


def test_recurring_neurons_over_30_prompts_sit_in_late_layers(smol_facts: Ingested) -> None:
    store, n_layers = smol_facts.store, smol_facts.ingestor.loaded.spec.n_layers
    assert len(run(store, "passes")) == 30
    rows = run(store, "recurring-neurons", top=100, min_frac=0.9)
    assert rows and all(r["passes"] > 27 for r in rows)
    assert sum(r["layer"] >= n_layers - 3 for r in rows) >= 5, [r["layer"] for r in rows]  # in the last 3 layers
    # the count of the most recurring one, recounted from its ACTIVATES rows
    top = rows[0]
    recount = store.rows(
        "MATCH (h:HiddenState)-[a:ACTIVATES]->(n:Neuron) WHERE n.uid = $u AND a.rank <= 100 RETURN count(*) AS c",
        {"u": top["uid"]})[0]["c"]
    assert recount == top["passes"]
