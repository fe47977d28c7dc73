"""Every query module on a small hand-built graph, against results worked out by hand.

The toy model has 2 layers, 2 heads (d_head 1), 3 MLP neurons per layer and an 8-token vocabulary. Its
passes are written row by row into a real LadybugDB store: every state and edge the schema prescribes,
with neutral defaults (top tokens ' D', ' E'; target rank 4; attention .5) and the few values each test
reads set by hand in PASSES below. A third pass is left incomplete: were it visible, every cross-pass
expectation below would change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

import queries
from lensgraph import schema
from lensgraph.cli import main
from lensgraph.errors import InputError
from lensgraph.store import Store, open_store
from queries import adhoc, load, run
from queries.subgraphs import flow_routes, visit_graph

MODEL = "toy"
TOKENS = [" A", " B", " C", " D", " E", " F", " G", " H"]
N_LAYERS, N_HEADS, D_MLP, SOURCES = 2, 2, 3, 2
DEFAULT_STATE = {"norm": 1.0, "entropy": 1.0, "top_tokens": [" D", " E"], "top_probs": [0.5, 0.2],
                 "bottom_tokens": [" H", " G"], "bottom_probs": [0.001, 0.002], "target_rank": 4,
                 "target_prob": 0.1, "pred_rank": 4, "pred_prob": 0.1}

# Per pass: the Pass row, then overrides by uid suffix: state properties, FLOWS_TO scores
# (source suffix, target suffix), ACTIVATES coefficients per (layer, neuron kind).
P1_COEFS = {(0, "mlp"): [0.1, -3.0, 2.0], (0, "attn_o"): [0.5, -0.7],
            (1, "mlp"): [1.0, 1.5, -0.2], (1, "attn_o"): [0.3, 0.1]}
PASSES: dict[str, dict[str, Any]] = {
    "toy@p1": {
        "row": {"prompt": "one", "tokens": ["<s>", " Mary"], "target": " A", "prediction": " A", "complete": True},
        "states": {
            "L0/head/h0": {"target_rank": 8, "target_prob": 0.001},
            "L0/head/h1": {"top_tokens": [" C", " A"], "top_probs": [0.4, 0.2]},
            "L1/head/h0": {"top_tokens": [" A", " C"], "top_probs": [0.5, 0.3], "target_rank": 1, "target_prob": 0.5},
            "L1/value/h0/s0": {"norm": 2.0},
            "L1/value/h0/s1": {"norm": 4.0, "top_tokens": [" C", " A"]},
            "L0/resid_post": {"target_rank": 3, "pred_rank": 3},
            "L1/resid_post": {"top_tokens": [" A", " B"], "top_probs": [0.7, 0.1], "target_rank": 1,
                              "target_prob": 0.7, "pred_rank": 1, "pred_prob": 0.7},
            "L0/ln1": {"top_tokens": [" A", " D"], "target_prob": 0.4, "pred_prob": 0.4},
            "L1/resid_mid": {"target_prob": 0.2, "pred_prob": 0.2},
        },
        "flows": {("L1/key/h0/s0", "L1/query/h0"): 0.25, ("L1/key/h0/s1", "L1/query/h0"): 0.75,
                  ("L1/value/h0/s0", "L1/head/h0"): 0.25, ("L1/value/h0/s1", "L1/head/h0"): 0.75,
                  ("L1/mlp_out", "L1/resid_post"): 0.1, ("L1/resid_mid", "L1/resid_post"): 0.9,
                  ("L1/attn_out", "L1/resid_mid"): 0.2, ("L1/resid_pre", "L1/resid_mid"): 0.8,
                  ("L0/attn_out", "L0/resid_mid"): 0.6, ("L0/resid_pre", "L0/resid_mid"): 0.4},
        "coefs": P1_COEFS,
    },
    "toy@p2": {
        "row": {"prompt": "two", "tokens": ["<s>", " John"], "target": " B", "prediction": " A", "complete": True},
        "states": {
            "L0/head/h0": {"target_rank": 7, "target_prob": 0.01},
            "L1/head/h1": {"target_rank": 8, "target_prob": 0.002},
            "L1/head/h0": {"top_tokens": [" A", " B"], "top_probs": [0.6, 0.3], "target_rank": 2, "target_prob": 0.3},
            "L0/resid_post": {"target_rank": 5, "target_prob": 0.05, "pred_rank": 2, "pred_prob": 0.2},
            "L1/resid_post": {"top_tokens": [" A", " B"], "top_probs": [0.6, 0.2], "target_rank": 2,
                              "target_prob": 0.2, "pred_rank": 1, "pred_prob": 0.6},
            "L0/ln2": {"target_prob": 0.0},  # a probability that underflowed
        },
        "flows": {},
        "coefs": {(0, "mlp"): [0.1, 3.0, -0.05], (0, "attn_o"): [0.9, 0.1],
                  (1, "mlp"): [2.0, 0.1, 0.3], (1, "attn_o"): [0.3, 0.1]},
    },
    "toy@p3": {  # incomplete: must stay invisible
        "row": {"prompt": "three", "tokens": ["<s>", " Mary"], "target": " A", "prediction": " A", "complete": False},
        "states": {"L0/head/h0": {"top_tokens": [" A", " B"]}, "L1/head/h1": {"target_rank": 8},
                   "L0/resid_post": {"target_rank": 1}},
        "flows": {},
        "coefs": P1_COEFS,
    },
}


def _suffixes() -> list[str]:
    out = []
    for layer in range(N_LAYERS):
        for kind in schema.LAYER_KINDS:
            if kind in schema.SOURCE_KINDS:
                out += [f"L{layer}/{kind}/h{h}/s{s}" for h in range(N_HEADS) for s in range(SOURCES)]
            elif kind in schema.HEAD_KINDS:
                out += [f"L{layer}/{kind}/h{h}" for h in range(N_HEADS)]
            else:
                out.append(f"L{layer}/{kind}")
    return [*out, "final"]


def _edges() -> dict[tuple[str, str], tuple[str, float]]:
    """Every FLOWS_TO edge of a pass (docs/SCHEMA.md), with its kind and default score."""
    edges = {}
    for layer in range(N_LAYERS):
        at = lambda s: f"L{layer}/{s}"  # noqa: E731
        edges[at("resid_pre"), at("ln1")] = ("norm", 1.0)
        edges[at("resid_mid"), at("ln2")] = ("norm", 1.0)
        edges[at("ln2"), at("mlp_out")] = ("read", 1.0)
        for h in range(N_HEADS):
            edges[at("ln1"), at(f"query/h{h}")] = ("read", 1.0)
            edges[at(f"query/h{h}"), at(f"head/h{h}")] = ("query", 1.0)
            edges[at(f"head/h{h}"), at("concat")] = ("sum", 0.5)
            for s in range(SOURCES):
                edges[at(f"key/h{h}/s{s}"), at(f"query/h{h}")] = ("key", 0.5)
                edges[at(f"value/h{h}/s{s}"), at(f"head/h{h}")] = ("value", 0.5)
        edges[at("concat"), at("attn_out")] = ("sum", 1.0)
        edges[at("attn_out"), at("resid_mid")] = ("sum", 0.5)
        edges[at("mlp_out"), at("resid_post")] = ("sum", 0.5)
        edges[at("resid_pre"), at("resid_mid")] = ("residual", 0.5)
        edges[at("resid_mid"), at("resid_post")] = ("residual", 0.5)
        if layer + 1 < N_LAYERS:
            edges[at("resid_post"), f"L{layer + 1}/resid_pre"] = ("layer", 1.0)
    edges[f"L{N_LAYERS - 1}/resid_post", "final"] = ("norm", 1.0)
    return edges


def _state(pass_uid: str, suffix: str, props: dict[str, Any]) -> dict[str, Any]:
    ref = schema.parse_state_uid(f"{pass_uid}/{suffix}")
    tokens = PASSES[pass_uid]["row"]["tokens"]
    position = ref.source if ref.source is not None else SOURCES - 1
    return {"uid": f"{pass_uid}/{suffix}", "pass": pass_uid, "layer": ref.layer, "kind": ref.kind,
            "head": ref.head, "position": position, "source_token": tokens[position], **DEFAULT_STATE, **props}


def _write(store: Store) -> None:
    def copy(table: str, rows: list[dict[str, Any]]) -> None:
        store._copy(table, pa.Table.from_pylist(rows, schema=schema.arrow_schema(table)))  # type: ignore[attr-defined]

    copy("Token", [{"uid": schema.token_uid(MODEL, i), "model": MODEL, "id": i, "text": t} for i, t in enumerate(TOKENS)])
    neuron_kinds = {"mlp": D_MLP, "attn_o": N_HEADS}
    copy("Neuron", [{"uid": schema.neuron_uid(MODEL, layer, kind, i), "model": MODEL, "layer": layer, "kind": kind,
                     "idx": i, "norm": 10.0 * layer + i, "entropy": 0.1 * i, "top_tokens": [" A"], "top_probs": [0.9],
                     "neg_entropy": 0.5, "neg_top_tokens": [" H"], "neg_top_probs": [0.8]}
                    for layer in range(N_LAYERS) for kind, n in neuron_kinds.items() for i in range(n)])
    copy("Model", [{"name": MODEL, "arch": "toy", "n_layers": N_LAYERS, "n_heads": N_HEADS, "n_kv_heads": N_HEADS,
                    "d_model": 4, "d_head": 1, "d_mlp": D_MLP, "vocab_size": len(TOKENS), "n_ctx": 8}])
    for uid, spec in PASSES.items():
        row = spec["row"]
        copy("Pass", [{"uid": uid, "model": MODEL, "position": SOURCES - 1, "created": uid, **row,
                       "target_id": TOKENS.index(row["target"]), "prediction_id": TOKENS.index(row["prediction"])}])
        states = [_state(uid, s, spec["states"].get(s, {})) for s in _suffixes()]
        copy("HiddenState", states)
        copy("HAS_STATE", [{"from": uid, "to": s["uid"]} for s in states])
        flows = [{"from": f"{uid}/{a}", "to": f"{uid}/{b}", "kind": kind, "score": spec["flows"].get((a, b), score)}
                 for (a, b), (kind, score) in _edges().items()]
        for target in {f["to"] for f in flows}:  # rank among the edges into the same target
            into = sorted((f for f in flows if f["to"] == target), key=lambda f: -f["score"])
            for rank, f in enumerate(into, 1):
                f["rank"] = rank
        copy("FLOWS_TO", flows)
        activates = []
        for (layer, kind), coefs in spec["coefs"].items():
            source = f"{uid}/L{layer}/{'ln2' if kind == 'mlp' else 'concat'}"
            order = sorted(range(len(coefs)), key=lambda i: -abs(coefs[i]))
            activates += [{"from": source, "to": schema.neuron_uid(MODEL, layer, kind, i), "coef": coefs[i],
                           "pre": coefs[i], "rank": order.index(i) + 1} for i in range(len(coefs))]
        copy("ACTIVATES", activates)
        copy("PROMOTES", [{"from": s["uid"], "to": schema.token_uid(MODEL, TOKENS.index(t)), "rank": r, "prob": p}
                          for s in states for r, (t, p) in enumerate(zip(s["top_tokens"], s["top_probs"]), 1)])


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("toy") / "store.lbug"
    store = open_store(str(path))
    _write(store)
    yield store
    store.close()


def _pick(rows: list[dict[str, Any]], *cols: str) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in rows]


def _approx(rows: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in rows]


# -- 2. heads promoting / suppressing a token --------------------------------------------------------
def test_heads_promoting_per_pass_and_summary(toy: Store) -> None:
    rows = run(toy, "heads-promoting", token=" A")
    assert _pick(rows, "pass", "layer", "head", "rank") == [
        ("toy@p1", 0, 1, 2), ("toy@p1", 1, 0, 1), ("toy@p2", 1, 0, 1)]  # not p3's L0 h0: incomplete
    summary = run(toy, "heads-promoting-summary", token=" A")
    assert _pick(summary, "layer", "head", "passes", "frac", "mean_rank", "mean_prob") == _approx([
        (1, 0, 2, 1.0, 1.0, 0.55), (0, 1, 1, 0.5, 2.0, 0.2)])
    assert _pick(run(toy, "heads-promoting-summary", token=" A", k=1), "layer", "head") == [(1, 0)]


def test_heads_suppressing_per_pass_and_summary(toy: Store) -> None:
    rows = run(toy, "heads-suppressing", n=2)  # vocab 8: bottom 2 = target rank 7 or 8
    assert _pick(rows, "pass", "layer", "head", "bottom_rank", "vs_uniform") == _approx([
        ("toy@p1", 0, 0, 1, 0.008), ("toy@p2", 0, 0, 2, 0.08), ("toy@p2", 1, 1, 1, 0.016)])
    assert _pick(run(toy, "heads-suppressing", n=1), "pass", "layer", "head") == [("toy@p1", 0, 0), ("toy@p2", 1, 1)]
    summary = run(toy, "heads-suppressing-summary", n=2)
    assert _pick(summary, "layer", "head", "passes", "frac", "mean_bottom_rank", "mean_vs_uniform") == _approx([
        (0, 0, 2, 1.0, 1.5, 0.044), (1, 1, 1, 0.5, 1.0, 0.016)])
    only_b = run(toy, "heads-suppressing-summary", n=2, token=" B")  # p2 alone
    assert _pick(only_b, "layer", "head", "frac", "mean_bottom_rank") == _approx([(1, 1, 1.0, 1.0), (0, 0, 1.0, 2.0)])


def test_target_heads(toy: Store) -> None:
    assert _pick(run(toy, "target-heads", k=2), "prompt", "layer", "head", "rank") == [("one", 1, 0, 1), ("two", 1, 0, 2)]


# -- 3. memory-value provenance -----------------------------------------------------------------------
def test_value_provenance(toy: Store) -> None:
    rows = run(toy, "value-provenance", layer=1, head=0, **{"pass": "toy@p1"})
    # carried = attention × value norm: s1 .75 × 4 = 3, s0 .25 × 2 = .5; shares 3/3.5, .5/3.5
    assert _pick(rows, "position", "source_token", "attention", "carried", "share", "shared_top") == _approx([
        (1, " Mary", 0.75, 3.0, 3 / 3.5, 2), (0, "<s>", 0.25, 0.5, 0.5 / 3.5, 0)])
    top1 = run(toy, "value-provenance", layer=1, head=0, k=1, **{"pass": "toy@p1"})
    assert [r["shared_top"] for r in top1] == [0, 0]  # value's top 1 is ' C', the head's ' A'


# -- 4. recurring neurons -------------------------------------------------------------------------------
def test_recurring_neurons(toy: Store) -> None:
    rows = run(toy, "recurring-neurons", top=1, min_frac=0.5)
    # L0 mlp n1 is rank 1 in both passes (coef -3, then 3); L1's rank-1 neuron differs between them.
    # Were the incomplete p3 counted, L1 mlp n1 (2 of 3 passes) would qualify too.
    assert _pick(rows, "uid", "passes", "frac", "mean_rank", "mean_coef", "norm", "entropy") == _approx([
        ("toy/L0/mlp/n1", 2, 1.0, 1.0, 0.0, 1.0, 0.1)])
    looser = run(toy, "recurring-neurons", top=1, min_frac=0.4)
    assert [r["uid"] for r in looser] == ["toy/L0/mlp/n1", "toy/L1/mlp/n0", "toy/L1/mlp/n1"]
    both = run(toy, "recurring-neurons", top=1, min_frac=0.5, kind="")
    assert [r["uid"] for r in both] == ["toy/L0/mlp/n1", "toy/L1/attn_o/n0"]
    assert run(toy, "recurring-neurons", top=1, min_frac=0.5, first=1) == []


# -- 5. logit-lens trajectory -----------------------------------------------------------------------------
def test_trajectory_per_pass_and_mean(toy: Store) -> None:
    rows = run(toy, "trajectory")
    assert _pick(rows, "pass", "layer", "target_rank", "pred_rank", "top_token") == [
        ("toy@p1", 0, 3, 3, " D"), ("toy@p1", 1, 1, 1, " A"), ("toy@p2", 0, 5, 2, " D"), ("toy@p2", 1, 2, 1, " A")]
    mean = run(toy, "trajectory-mean")
    assert _pick(mean, "layer", "passes", "mean_target_rank", "mean_target_prob", "target_top1", "mean_pred_rank",
                 "mean_pred_prob", "pred_top1") == _approx([
        (0, 2, 4.0, 0.075, 0.0, 2.5, 0.15, 0.0), (1, 2, 1.5, 0.45, 0.5, 1.0, 0.65, 1.0)])


# -- 6. layer-norm filter -----------------------------------------------------------------------------------
def test_norm_filter(toy: Store) -> None:
    rows = run(toy, "norm-filter", **{"pass": "toy@p1"})
    # L0 ln1 lifts ' A' into the top (and drops ' E'), target .1 → .4; L1 ln2 halves it, .2 → .1
    assert _pick(rows, "layer", "norm", "target_gain", "pred_gain", "raised", "lowered") == _approx([
        (0, "ln1", 4.0, 4.0, [" A"], [" E"]), (1, "ln2", 0.5, 0.5, [], []),
        (0, "ln2", 1.0, 1.0, [], []), (1, "ln1", 1.0, 1.0, [], [])])
    assert len(run(toy, "norm-filter", first=1, last=1)) == 4  # two norms × two complete passes
    p2 = run(toy, "norm-filter", **{"pass": "toy@p2"})  # no gain from a zero probability; sorted last
    assert _pick(p2, "layer", "norm", "target_gain") == [(0, "ln1", 1.0), (1, "ln1", 1.0), (1, "ln2", 1.0), (0, "ln2", None)]


# -- 7. intersection score ------------------------------------------------------------------------------------
def test_intersection(toy: Store) -> None:
    one = run(toy, "intersection", k=2, **{"pass": "toy@p1"})
    # L0: head h0 shares both tokens with each of its values, h1 (' C', ' A') none: (1+1+0+0)/4.
    # L1: h0's values share 0 and 2 of ' A', ' C'; h1 and its values all default: (0+1+1+1)/4.
    assert _pick(one, "layer", "score", "pairs", "passes") == _approx([(0, 0.5, 4, 1), (1, 0.75, 4, 1)])
    assert _pick(run(toy, "intersection", k=1, **{"pass": "toy@p1"}), "layer", "score") == _approx([(0, 0.5), (1, 0.5)])
    both = run(toy, "intersection", k=2)  # p2: L0 all default (4/4), L1 h0's values share nothing (2/4)
    assert _pick(both, "layer", "score", "pairs", "passes") == _approx([(0, 0.75, 8, 2), (1, 0.625, 8, 2)])
    heads = run(toy, "intersection", a="head", b="attn_out", k=2, **{"pass": "toy@p1"})
    assert _pick(heads, "layer", "score", "pairs") == _approx([(0, 0.5, 2), (1, 0.5, 2)])


# -- 1. VISIT reduced graph --------------------------------------------------------------------------------------
def test_visit_graph_keeps_top_k_memories_and_neurons(toy: Store) -> None:
    g = visit_graph(toy, "toy@p1", k=1, k_attn=1, k_mlp=2)
    states = {n["uid"].removeprefix("toy@p1/") for n in g.nodes if n["kind"] not in schema.NEURON_KINDS}
    memories = {s for s in states if "/key/" in s or "/value/" in s}
    # one key and one value per head: the larger attention (L1 h0: s1, .75), else the earlier source on a tie
    assert memories == {f"L{layer}/{kind}/h{h}/s{1 if (layer, h) == (1, 0) else 0}"
                        for layer in range(2) for kind in ("key", "value") for h in range(2)}
    assert len(states) == len(_suffixes()) - 8
    neurons = {n["uid"]: (n["sign"], n["top_tokens"]) for n in g.nodes if n["kind"] in schema.NEURON_KINDS}
    assert neurons == {"toy/L0/attn_o/n1": (-1, [" H"]), "toy/L0/mlp/n1": (-1, [" H"]), "toy/L0/mlp/n2": (1, [" A"]),
                       "toy/L1/attn_o/n0": (1, [" A"]), "toy/L1/mlp/n1": (1, [" A"]), "toy/L1/mlp/n0": (1, [" A"])}
    activates = {(e["source"].removeprefix("toy@p1/"), e["target"]): e["coef"] for e in g.edges if e["kind"] == "activates"}
    assert activates[("L0/ln2", "toy/L0/mlp/n1")] == -3.0 and len(activates) == 6
    uids = {n["uid"] for n in g.nodes}
    assert all(e["source"] in uids and e["target"] in uids for e in g.edges)
    rows = run(toy, "visit-states", k=1, **{"pass": "toy@p1"})  # two UNION parts, sorted by `@order` in Python
    assert load("visit-states").order == ("uid",) and [r["uid"] for r in rows] == sorted(n["uid"] for n in rows)
    assert rows == [n for n in g.nodes if n["kind"] not in schema.NEURON_KINDS]
    late = visit_graph(toy, "toy@p1", first=1, last=1, k=1)
    assert len([n for n in late.nodes if n["kind"] not in schema.NEURON_KINDS]) == 20 - 4 + 1  # + final
    assert len(visit_graph(toy, "toy@p1", k=2).nodes) == len(_suffixes()) + 2 * (2 + 3)  # all states and neurons
    with pytest.raises(InputError):
        visit_graph(toy, "toy@p3")  # incomplete


# -- 8. information-flow routes ---------------------------------------------------------------------------------
def test_flow_routes_trace_back_from_the_output(toy: Store) -> None:
    g = flow_routes(toy, "toy@p1", tau=0.3)
    # L1: only the residual path survives (mlp_out .1 and attn_out .2 are below tau), so no L1 component
    # is on a route; L0 keeps everything but its keys (and its resid_pre, ln1 lead on to the start).
    l0 = {"resid_pre", "ln1", "query/h0", "query/h1", "value/h0/s0", "value/h0/s1", "value/h1/s0", "value/h1/s1",
          "head/h0", "head/h1", "concat", "attn_out", "resid_mid", "ln2", "mlp_out", "resid_post"}
    want = {"final", "L1/resid_post", "L1/resid_mid", "L1/resid_pre", *(f"L0/{s}" for s in l0)}
    assert {n["uid"].removeprefix("toy@p1/") for n in g.nodes} == want
    assert len(g.edges) == 4 + 18
    assert min(e["score"] for e in g.edges) >= 0.3
    with_keys = flow_routes(toy, "toy@p1", tau=0.3, keys=True)
    assert len(with_keys.nodes) == len(want) + 4 and len(with_keys.edges) == 22 + 4
    everything = flow_routes(toy, "toy@p1", tau=0.0, keys=True)
    assert len(everything.nodes) == len(_suffixes()) and len(everything.edges) == len(_edges())


# -- 9. pass diff --------------------------------------------------------------------------------------------------
def test_pass_diff(toy: Store) -> None:
    rows = run(toy, "pass-diff", a="toy@p1", b="toy@p2", kind="head")
    assert _pick(rows, "layer", "head", "target_rank_a", "target_rank_b", "d_target_prob", "shared_top") == _approx([
        (0, 0, 8, 7, 0.009, 2), (0, 1, 4, 4, 0.0, 0), (1, 0, 1, 2, -0.2, 1), (1, 1, 4, 8, -0.098, 2)])
    assert len(run(toy, "pass-diff", a="toy@p1", b="toy@p2", first=1, last=1)) == 20 + 1  # layer 1 and final


# -- the catalog and its docs ------------------------------------------------------------------------------------
def test_every_query_has_a_summary_documented_params_and_docs() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "QUERIES.md").read_text()
    problems = []
    for q in queries.catalog().values():
        if not q.summary:
            problems.append(f"{q.name}: no summary line")
        problems += [f"{q.name}: parameter {p.name} undocumented" for p in q.params if not p.doc]
        cypher = "\n".join(line for line in q.text.splitlines() if not line.startswith("//")).strip()
        used = set(re.findall(r"\$(\w+)", cypher))
        problems += [f"{q.name}: ${name} used but not declared" for name in used - {p.name for p in q.params}]
        section = doc.split(f"\n### `{q.name}`\n", 1)
        if len(section) < 2:
            problems.append(f"{q.name}: no section in docs/QUERIES.md")
            continue
        body = section[1].split("\n### ", 1)[0]
        problems += [f"{q.name}: docs lack parameter {p.name}" for p in q.params if f"`{p.name}`" not in body]
        if "Example" not in body:
            problems.append(f"{q.name}: docs lack an example")
        if cypher not in body:
            problems.append(f"{q.name}: docs' Cypher differs from the file")
    assert not problems, "\n".join(problems)


# -- ad-hoc read-only Cypher -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "CREATE (:Token {uid: 'x'})", "MATCH (p:Pass) SET p.complete = false", "MATCH (h:HiddenState) DETACH DELETE h",
    "MATCH (p:Pass) REMOVE p.prompt", "DROP TABLE Pass", "COPY Pass FROM 'x.csv'", "LOAD FROM 'x.csv' RETURN *",
    "INSTALL json", "CALL timeout=999999", "CALL create_thing() RETURN *", "EXPORT DATABASE '/tmp/x'",
    "MERGE (t:Token {uid: 'x'})", "MATCH (p:Pass) RETURN p; CREATE (:Meta {key: 'x'})",
    "ATTACH 'other.lbug' AS o", "match (p:Pass) set p.prompt = 'x'",
])
def test_cypher_refuses_writes(text: str) -> None:
    with pytest.raises(InputError):
        adhoc.check_read_only(text)


def test_cypher_allows_keywords_inside_strings_comments_and_properties() -> None:
    text = "MATCH (p:Pass) WHERE p.prompt <> 'CREATE; SET x' // DELETE\nRETURN p.uid AS settings;"
    assert adhoc.check_read_only(text) == text[:-1]
    assert adhoc.check_read_only("CALL show_tables() RETURN name")


def test_cypher_limits_rows_and_reports_truncation(toy: Store) -> None:
    result = adhoc.run_read_only(toy, "MATCH (h:HiddenState) RETURN h.uid AS uid ORDER BY uid", limit=5)
    assert len(result.rows) == 5 and result.truncated
    assert result.rows[0]["uid"] == sorted(_state(p, s, {})["uid"] for p in PASSES for s in _suffixes())[0]
    own = adhoc.run_read_only(toy, "MATCH (t:Token) RETURN t.text AS text ORDER BY text LIMIT 3", limit=100)
    assert [r["text"] for r in own.rows] == TOKENS[:3] and not own.truncated
    big = adhoc.run_read_only(toy, "MATCH (t:Token) RETURN t.text AS text ORDER BY text LIMIT 500", limit=4)
    assert len(big.rows) == 4 and big.truncated
    exact = adhoc.run_read_only(toy, "MATCH (t:Token) WHERE t.id < $n RETURN t.id AS id", {"n": 3}, limit=3)
    assert sorted(r["id"] for r in exact.rows) == [0, 1, 2] and not exact.truncated


def test_cypher_time_limit_and_bad_queries_are_input_errors(toy: Store) -> None:
    with pytest.raises(InputError, match="failed"):
        adhoc.run_read_only(toy, "MATCH (a:NoSuchTable) RETURN a")
    with pytest.raises(InputError, match="Parser"):
        adhoc.run_read_only(toy, "MATCH (p:Pass RETURN p")
    cross = ("MATCH (a:HiddenState), (b:HiddenState), (c:HiddenState), (d:HiddenState) "
             "WHERE a.norm + b.norm + c.norm + d.norm < 0 RETURN count(*)")
    with pytest.raises(InputError, match="time limit"):
        adhoc.run_read_only(toy, cross, timeout_s=0.001)


def test_cypher_command(tmp_path: Path) -> None:
    store = str(tmp_path / "cli.lbug")
    db = open_store(store)
    _write(db)
    db.close()
    cli = CliRunner()
    ok = cli.invoke(main, ["cypher", "MATCH (t:Token) WHERE t.id < $n RETURN t.text AS text ORDER BY text",
                           "--param", "n=2", "--format", "csv", "--store", store])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines() == ["text", " A", " B"]
    cut = cli.invoke(main, ["cypher", "MATCH (t:Token) RETURN t.id AS id", "--limit", "2", "--format", "json",
                            "--store", store])
    assert cut.exit_code == 0 and "only the first 2 rows" in cut.stderr
    for bad in ("MATCH (p:Pass) SET p.prompt = 'x'", "MATCH (p:Pass RETURN p", "MATCH (n:NoSuchTable) RETURN n"):
        res = cli.invoke(main, ["cypher", bad, "--store", store])
        assert res.exit_code == 2 and res.stderr.startswith("error: "), (bad, res.output)
        assert "Traceback" not in res.output
    assert cli.invoke(main, ["cypher", "RETURN 1", "--timeout", "0", "--store", store]).exit_code == 2
    again = open_store(store, read_only=True)  # nothing was written
    assert again.rows("MATCH (p:Pass) WHERE p.prompt = 'x' RETURN count(*) AS n")[0]["n"] == 0
    again.close()

