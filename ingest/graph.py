"""Build the full, unpruned flow graph of one captured pass (docs/SCHEMA.md): pure, no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from ingest.adapters import LayerWeights, ModelSpec
from ingest.capture import Capture
from ingest.lens import Factored, LensStats, LogitLens
from ingest.static import lens_columns
from lensgraph import schema
from lensgraph.records import PassGraph


@dataclass
class ModelTables:
    """Per-model arrays every pass reuses."""

    texts: np.ndarray  # [vocab] token texts
    token_uids: np.ndarray  # [vocab]
    neuron_uids: dict[tuple[int, str], np.ndarray]  # (layer, kind) -> [n] Neuron uids


def contributions(total: torch.Tensor, parts: torch.Tensor) -> np.ndarray:
    """LM-TT's share of each part in a sum: max(0, |total| - |total - part|), normalised to sum 1.

    total [d_model], parts [n, d_model]; parts need not include every term (e.g. a bias).
    """
    raw = (total.norm() - (total - parts).norm(dim=-1)).clamp(min=0).double().numpy()
    s = raw.sum()
    return raw / s if s > 0 else raw


@dataclass
class Layout:
    """One pass's nodes and edges, and the vectors still to be read through the lens (build's first stage):
    `vectors` holds, in node order, those of the nodes outside the `factored` blocks, which build their own."""

    pass_row: dict
    tokens: list[str]  # texts of the tokens the pass ran on
    position: int
    target_id: int
    prediction_id: int
    uids: list[str] = field(default_factory=list)
    layer: list[int | None] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    head: list[int | None] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    vectors: list[torch.Tensor] = field(default_factory=list)  # [n, d_model] each
    factored: list[Factored] = field(default_factory=list)  # nodes that are U[h] @ A[h] of a circuit
    edges: list[tuple[np.ndarray, np.ndarray, str, np.ndarray]] = field(default_factory=list)
    act_from: list[tuple[int, int, str, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def add(self, layer: int | None, kind: str, vectors: torch.Tensor, heads: list[int] | None = None,
            sources: list[int] | None = None) -> np.ndarray:
        """Add nodes for the rows of `vectors` [n, d_model]; returns their indices."""
        self.vectors.append(vectors.clone())  # not a view, which would keep a whole capture tensor alive
        return self._nodes(layer, kind, vectors.shape[0], heads, sources)

    def _nodes(self, layer: int | None, kind: str, n: int, heads: list[int] | None,
               sources: list[int] | None) -> np.ndarray:
        start = len(self.uids)
        for i in range(n):
            h = heads[i] if heads is not None else None
            s = sources[i] if sources is not None else None
            self.uids.append(schema.state_uid(self.pass_row["uid"], layer, kind, h, s))
            self.layer.append(layer)
            self.kind.append(kind)
            self.head.append(h)
            self.source.append(self.position if s is None else s)
        return np.arange(start, start + n)

    def add_heads(self, layer: int, kind: str, key: str, U: torch.Tensor, A: torch.Tensor,
                  sources: bool = False) -> Factored:
        """Nodes U[h] @ A[h] for every head h (U [H, R, d_head], A [H, d_head, d_model]), head-major; their
        block, whose `rows` are the nodes' indices. With `sources`, row r of head h is the node of head h
        and source position r; without, it is query head h·R + r's (the R query heads that share A[h])."""
        H, R, _ = U.shape
        if sources:
            heads, positions = [h for h in range(H) for _ in range(R)], [s for _ in range(H) for s in range(R)]
        else:
            heads, positions = list(range(H * R)), None
        rows = self._nodes(layer, kind, H * R, heads, positions)
        self.factored.append(Factored((layer, key), A, U.clone(), rows))  # a copy, as in add
        return self.factored[-1]

    def one(self, layer: int | None, kind: str, vector: torch.Tensor) -> int:
        return int(self.add(layer, kind, vector[None])[0])

    def link(self, src: np.ndarray | int, dst: np.ndarray | int, kind: str,
             score: np.ndarray | float = 1.0) -> None:
        src, dst = np.atleast_1d(src), np.atleast_1d(dst)
        n = max(len(src), len(dst))
        self.edges.append((np.broadcast_to(src, n), np.broadcast_to(dst, n), kind,
                           np.broadcast_to(np.asarray(score, np.float64), n)))


def layout(spec: ModelSpec, weights: list[LayerWeights], cap: Capture, tables: ModelTables, pass_row: dict,
           target_id: int) -> Layout:
    """Every node and edge of the pass, with the vectors its nodes stand for (not yet annotated)."""
    pos = len(cap.token_ids) - 1
    S, H = pos + 1, spec.n_heads
    kv = torch.arange(H) // spec.group  # the key/value head each query head reads
    b = Layout(pass_row, [str(tables.texts[t]) for t in cap.token_ids], pos, target_id, int(cap.logits.argmax()))
    prev_post = None
    for layer, (c, w) in enumerate(zip(cap.layers, weights)):
        resid_pre = b.one(layer, "resid_pre", c.resid_pre[pos])
        if prev_post is not None:
            b.link(prev_post, resid_pre, "layer")
        ln1 = b.one(layer, "ln1", c.ln1[pos])
        b.link(resid_pre, ln1, "norm")
        # queries and keys read through the other side's circuit (VISIT D.3): q·k = (q W_K^T)·x_src; the
        # query heads that share a key/value head share its W_K
        query = b.add_heads(layer, "query", "W_K", c.q[pos].reshape(spec.n_kv_heads, spec.group, spec.d_head),
                            w.W_K.transpose(1, 2)).rows
        b.link(ln1, query, "read")
        key = b.add_heads(layer, "key", "W_Q", c.k[:, kv].transpose(0, 1), w.W_Q.transpose(1, 2),
                          sources=True).rows
        attn = c.attn[:, :S].reshape(-1).double().numpy()  # [H*S], head-major like key/value
        b.link(key, np.repeat(query, S), "key", attn)
        # values and heads in the residual basis, through each head's slice of W_O
        concat_h = c.concat[pos].reshape(H, 1, spec.d_head)
        heads = b.add_heads(layer, "head", "W_O", concat_h, w.W_O)
        head, head_vecs = heads.rows, heads.vectors()  # head_vecs [H, d_model]
        b.link(query, head, "query")
        value = b.add_heads(layer, "value", "W_O", c.v[:, kv].transpose(0, 1), w.W_O, sources=True).rows
        b.link(value, np.repeat(head, S), "value", attn)
        heads_sum = head_vecs.sum(0)
        concat = b.one(layer, "concat", heads_sum)
        b.link(head, concat, "sum", contributions(heads_sum, head_vecs))
        concat_vec = c.concat[pos].clone()  # a copy, as in Layout.add
        b.act_from.append((concat, layer, "attn_o", concat_vec, concat_vec))
        attn_out = b.one(layer, "attn_out", c.attn_out[pos])
        if spec.post_norms:  # Gemma: attn_out = norm(concat W_O + b_O)
            b.link(concat, attn_out, "norm")
        else:
            b.link(concat, attn_out, "sum", contributions(c.attn_out[pos], heads_sum[None])[0])
        if spec.block == "parallel":  # attention and MLP both read resid_pre: no resid_mid
            mlp_input = resid_pre
        else:
            mlp_input = b.one(layer, "resid_mid", c.resid_mid[pos])
            share = contributions(c.resid_mid[pos], torch.stack([c.resid_pre[pos], c.attn_out[pos]]))
            b.link(resid_pre, mlp_input, "residual", share[0])
            b.link(attn_out, mlp_input, "sum", share[1])
        ln2 = b.one(layer, "ln2", c.ln2[pos])
        b.link(mlp_input, ln2, "norm")
        b.act_from.append((ln2, layer, "mlp", c.coef[pos].clone(), c.pre[pos].clone()))
        mlp_out = b.one(layer, "mlp_out", c.mlp_out[pos])
        b.link(ln2, mlp_out, "read")
        resid_post = b.one(layer, "resid_post", c.resid_post[pos])
        if spec.block == "parallel":
            parts = torch.stack([c.resid_pre[pos], c.attn_out[pos], c.mlp_out[pos]])
            share = contributions(c.resid_post[pos], parts)
            b.link(resid_pre, resid_post, "residual", share[0])
            b.link(np.array([attn_out, mlp_out]), resid_post, "sum", share[1:])
        else:
            share = contributions(c.resid_post[pos], torch.stack([c.resid_mid[pos], c.mlp_out[pos]]))
            b.link(mlp_input, resid_post, "residual", share[0])
            b.link(mlp_out, resid_post, "sum", share[1])
        prev_post = resid_post
    final = b.one(None, schema.FINAL_KIND, cap.layers[-1].resid_post[pos])
    b.link(prev_post, final, "norm")
    return b


def stack(layouts: list[Layout]) -> tuple[torch.Tensor, list[Factored], np.ndarray]:
    """Several passes as one: their vectors [N - factored rows, d_model], their factored blocks re-indexed
    into the N rows, and where each pass's rows start (with N at the end)."""
    offsets = np.cumsum([0] + [len(b.uids) for b in layouts])
    X = torch.cat([v for b in layouts for v in b.vectors])
    factored = [Factored(f.key, f.A, f.U, f.rows + off) for b, off in zip(layouts, offsets) for f in b.factored]
    return X, factored, offsets


def annotate(layouts: list[Layout], lens: LogitLens, top_k: int,
             timings: dict[str, float] | None = None) -> list[LensStats]:
    """The lens annotation of every node of several passes, in one projection: a circuit shared by the
    passes (a layer's W_O, W_Q or W_K) is factored once for all of them when that saves FLOPs."""
    t0 = time.perf_counter()
    X, factored, offsets = stack(layouts)
    n = np.diff(offsets)
    tracked = {"target": np.repeat([b.target_id for b in layouts], n),
               "pred": np.repeat([b.prediction_id for b in layouts], n)}
    stats = lens.stats(X, top_k, tracked, factored)
    if timings is not None:
        timings["project"] = time.perf_counter() - t0
    return [stats.take(slice(offsets[i], offsets[i + 1])) for i in range(len(layouts))]


def assemble(b: Layout, stats: LensStats, tables: ModelTables, promotes_k: int) -> PassGraph:
    """The pass's tables from its layout and its nodes' annotations."""
    uids = np.array(b.uids, dtype=object)
    n = len(uids)
    states = pa.table({
        "uid": uids.tolist(), "pass": [b.pass_row["uid"]] * n, "layer": pa.array(b.layer, pa.int64()),
        "kind": b.kind, "head": pa.array(b.head, pa.int64()), "position": np.array(b.source, np.int64),
        "source_token": [b.tokens[s] for s in b.source], "norm": stats.norm, "entropy": stats.entropy,
        **lens_columns(stats, tables.texts),
        "target_rank": stats.ranks["target"], "target_prob": stats.probs["target"],
        "pred_rank": stats.ranks["pred"], "pred_prob": stats.probs["pred"],
    }, schema=schema.arrow_schema("HiddenState"))
    return PassGraph(b.pass_row, states, _flows(b, uids), _activates(b.act_from, uids, tables),
                     _promotes(stats.top_ids, stats.top_probs, uids, tables, promotes_k))


def _ranks(groups: np.ndarray, score: np.ndarray) -> np.ndarray:
    """1-based rank of each score within its group, highest first; ties keep the edges' order (lexsort is stable),
    which docs/SCHEMA.md promises and visit-states relies on: structural edges first, then sources by position."""
    order = np.lexsort((-score, groups))
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    within = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    ranks = np.empty(len(g), np.int64)
    ranks[order] = within + 1
    return ranks


def _flows(b: Layout, uids: np.ndarray) -> pa.Table:
    src = np.concatenate([e[0] for e in b.edges])
    dst = np.concatenate([e[1] for e in b.edges])
    kind = np.concatenate([np.full(len(e[0]), e[2], dtype=object) for e in b.edges])
    score = np.concatenate([e[3] for e in b.edges])
    return pa.table({"from": uids[src].tolist(), "to": uids[dst].tolist(), "kind": kind.tolist(),
                     "score": score, "rank": _ranks(dst, score)}, schema=schema.arrow_schema("FLOWS_TO"))


def _activates(act_from: list, uids: np.ndarray, tables: ModelTables) -> pa.Table:
    src, dst, coef, pre, rank = [], [], [], [], []
    for node, layer, kind, c, p in act_from:
        c = c.double().numpy()
        src.append(np.full(len(c), uids[node], dtype=object))
        dst.append(tables.neuron_uids[layer, kind])
        coef.append(c)
        pre.append(p.double().numpy())
        rank.append(_ranks(np.zeros(len(c), np.int64), np.abs(c)))
    cat = np.concatenate
    return pa.table({"from": cat(src).tolist(), "to": cat(dst).tolist(), "coef": cat(coef), "pre": cat(pre),
                     "rank": cat(rank)}, schema=schema.arrow_schema("ACTIVATES"))


def _promotes(top_ids: np.ndarray, top_probs: np.ndarray, uids: np.ndarray, tables: ModelTables,
              k: int) -> pa.Table:
    n = len(uids)
    return pa.table({
        "from": np.repeat(uids, k).tolist(), "to": tables.token_uids[top_ids[:, :k]].ravel().tolist(),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n), "prob": top_probs[:, :k].ravel(),
    }, schema=schema.arrow_schema("PROMOTES"))
