"""Export benchmark: time to render SVG figures of reduced graphs and of a large subgraph.

    python bench/export.py [--repeat 5] [--store PATH]

Renders the VISIT reduced graph (queries.subgraphs.visit_graph) of a SmolLM2-135M pass over 1 and over
6 layers, and a synthetic 2,000-node pass subgraph (schema-shaped: 10 layers, 9 heads, 10 source
positions), and prints the median wall time of each render (DOT text + Graphviz layout + SVG).
Targets: 1 layer < 0.3 s, 6 layers < 1.5 s, 2,000 nodes < 10 s. With no --store, one prompt is ingested
into a temporary store first (about 10 s; the static cache is reused).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lensgraph.subgraph import Subgraph  # noqa: E402

TARGETS = {"1 layer": 0.3, "6 layers": 1.5, "2,000 nodes": 10.0}


def synthetic(n_layers: int, n_heads: int, n_src: int, prefix: str = "m@0000000000000000") -> Subgraph:
    """A pass subgraph shaped like schema v1 (every state kind and FLOWS_TO kind), with made-up values."""
    nodes: list[dict] = []
    edges: list[dict] = []
    p = n_src - 1

    def node(layer: int | None, kind: str, head: int | None = None, src: int | None = None) -> str:
        uid = f"{prefix}/final" if kind == "final" else (
            f"{prefix}/L{layer}/{kind}" + (f"/h{head}" if head is not None else "") + (f"/s{src}" if src is not None else ""))
        i = len(nodes)
        rank = 1 + (i * 7919) % 5000 if layer is None or layer < n_layers - 2 else 1 + i % 3
        nodes.append({"uid": uid, "layer": layer, "kind": kind, "head": head, "position": p if src is None else src,
                      "source_token": f"tok{p if src is None else src}", "norm": 1.0 + i % 13,
                      "entropy": 0.5 + (i * 31) % 90 / 10, "top_tokens": [f" w{i % 97}", f" v{i % 89}"],
                      "top_probs": [0.5, 0.1], "bottom_tokens": [f" z{i % 83}"], "bottom_probs": [1e-7],
                      "target_rank": rank, "target_prob": round(1 / rank, 4)})
        return uid

    def edge(a: str, b: str, kind: str, score: float) -> None:
        edges.append({"source": a, "target": b, "kind": kind, "score": score, "rank": 1})

    prev = None
    for layer in range(n_layers):
        pre = node(layer, "resid_pre")
        if prev:
            edge(prev, pre, "layer", 1.0)
        ln1, concat = node(layer, "ln1"), node(layer, "concat")
        edge(pre, ln1, "norm", 1.0)
        for h in range(n_heads):
            q, hd = node(layer, "query", h), node(layer, "head", h)
            edge(ln1, q, "read", 1.0)
            edge(q, hd, "query", 1.0)
            for s in range(n_src):
                a = ((s + h + layer) % n_src + 1) / (n_src * (n_src + 1) / 2)
                edge(node(layer, "key", h, s), q, "key", a)
                edge(node(layer, "value", h, s), hd, "value", a)
            edge(hd, concat, "sum", 1 / n_heads)
        attn, mid, ln2, mlp, post = (node(layer, k) for k in ("attn_out", "resid_mid", "ln2", "mlp_out", "resid_post"))
        edge(concat, attn, "sum", 1.0)
        edge(pre, mid, "residual", 0.7)
        edge(attn, mid, "sum", 0.3)
        edge(mid, ln2, "norm", 1.0)
        edge(ln2, mlp, "read", 1.0)
        edge(mid, post, "residual", 0.6)
        edge(mlp, post, "sum", 0.4)
        prev = post
    edge(prev, node(None, "final"), "norm", 1.0)
    return Subgraph(nodes, edges, {"prompt": "synthetic", "target": " Paris", "model": "synthetic"})


def median_s(graph: Subgraph, out: Path, repeat: int) -> float:
    from export import render

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        render(graph, out)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def smol_graphs(store_path: str | None) -> dict[str, Subgraph]:
    from lensgraph.store import open_store
    from queries.subgraphs import visit_graph

    if store_path is None:
        from ingest.pipeline import Ingestor
        from ingest.prompts import PromptSpec

        store_path = str(Path(tempfile.mkdtemp(prefix="lensgraph-bench-export-")) / "store.lbug")
        store = open_store(store_path)
        ingestor = Ingestor("smollm2-135m")
        if not store.has_model(ingestor.loaded.name):
            store.write_model(ingestor.static())
        ingestor.run(store, ingestor.prepare(PromptSpec("The capital of France is")))
        store.close()
    store = open_store(store_path, read_only=True)
    try:
        uid = store.rows("MATCH (p:Pass) WHERE p.complete = true RETURN p.uid AS u ORDER BY u LIMIT 1")[0]["u"]
        return {"1 layer": visit_graph(store, uid, 29, 29), "6 layers": visit_graph(store, uid, 24, 29)}
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--store", help="a store holding at least one SmolLM2-135M pass (default: ingest one)")
    args = ap.parse_args()
    graphs = {**smol_graphs(args.store), "2,000 nodes": synthetic(10, 9, 10)}
    out = Path(tempfile.mkdtemp(prefix="lensgraph-bench-export-")) / "fig.svg"
    print(f"{'graph':<12} {'nodes':>6} {'edges':>6} {'median s':>9} {'target s':>9}")
    for name, graph in graphs.items():
        s = median_s(graph, out, args.repeat)
        ok = "ok" if s < TARGETS[name] else "SLOW"
        print(f"{name:<12} {len(graph.nodes):>6} {len(graph.edges):>6} {s:>9.3f} {TARGETS[name]:>9.1f}  {ok}")


if __name__ == "__main__":
    main()
