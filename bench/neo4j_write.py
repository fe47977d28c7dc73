"""Write throughput of the Neo4j store on a real server: rows per second per batch size.

Needs a reachable Neo4j 5 (e.g. `docker compose -f docker/compose.yaml up -d neo4j`); it exits with a
message otherwise. It writes a synthetic model shaped like SmolLM2-135M (30 layers, 9 heads, d_mlp 1536,
vocabulary 49,152) and passes of the "capital of France" size (3,481 states, 3,780 FLOWS_TO, 63,360
ACTIVATES, 17,405 PROMOTES), for each batch size, then deletes what it wrote.

    python bench/neo4j_write.py --store neo4j://neo4j:PASSWORD@localhost:7687 [--passes 3] [--batches 10000,20000,50000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pyarrow as pa

from lensgraph import schema
from lensgraph.errors import StoreError
from lensgraph.records import ModelGraph, PassGraph

MODEL = "bench:synthetic"
L, H, D_HEAD, D_MLP, VOCAB, S, K, TOP = 30, 9, 64, 1536, 49152, 5, 5, 10


def _lists(rng: np.random.Generator, n: int, words: list[str] | None = None) -> pa.Array:
    values = pa.array(rng.choice(words, n * TOP)) if words else pa.array(rng.random(n * TOP))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * TOP + 1, TOP, dtype=np.int32)), values)


def _table(name: str, n: int, columns: dict[str, object], rng: np.random.Generator) -> pa.Table:
    """n rows of `name`: the given columns, every other one filled with values of its type."""
    words = [f" w{i}" for i in range(1000)]
    out = {}
    for field in schema.arrow_schema(name):
        if field.name in columns:
            out[field.name] = columns[field.name]
        elif pa.types.is_list(field.type):
            out[field.name] = _lists(rng, n, words if pa.types.is_string(field.type.value_type) else None)
        elif pa.types.is_floating(field.type):
            out[field.name] = rng.random(n)
        elif pa.types.is_integer(field.type):
            out[field.name] = rng.integers(0, 100, n)
        else:
            out[field.name] = [f"x{i % 10}" for i in range(n)]
    return pa.table(out, schema=schema.arrow_schema(name))


def model_graph(rng: np.random.Generator) -> ModelGraph:
    neurons = [schema.neuron_uid(MODEL, layer, kind, i) for layer in range(L)
               for kind, n in (("mlp", D_MLP), ("attn_o", H * D_HEAD)) for i in range(n)]
    tokens = _table("Token", VOCAB, {"uid": [schema.token_uid(MODEL, i) for i in range(VOCAB)],
                                     "model": [MODEL] * VOCAB, "id": np.arange(VOCAB)}, rng)
    row = {c: 0 if t == "INT64" else "bench" for c, t in schema.NODE_TABLES["Model"].items()} | {"name": MODEL}
    return ModelGraph(row, tokens, _table("Neuron", len(neurons), {"uid": neurons, "model": [MODEL] * len(neurons)}, rng))


def pass_graph(i: int, rng: np.random.Generator) -> PassGraph:
    uid = schema.pass_uid(MODEL, f"{i:016x}")
    states = [schema.state_uid(uid, layer, kind, head, src) for layer in range(L)
              for kind, head, src in [(k, None, None) for k in ("resid_pre", "ln1", "concat", "attn_out", "resid_mid",
                                                                "ln2", "mlp_out", "resid_post")]
              + [(k, h, None) for h in range(H) for k in ("query", "head")]
              + [(k, h, s) for h in range(H) for s in range(S) for k in ("key", "value")]]
    states.append(schema.state_uid(uid, None, "final"))
    n = len(states)
    flows = [(states[j % n], states[(j + 1) % n]) for j in range(3780)]
    acts = [(schema.state_uid(uid, layer, "ln2"), schema.neuron_uid(MODEL, layer, "mlp", j))
            for layer in range(L) for j in range(D_MLP)]
    acts += [(schema.state_uid(uid, layer, "concat"), schema.neuron_uid(MODEL, layer, "attn_o", j))
             for layer in range(L) for j in range(H * D_HEAD)]
    proms = [(s, schema.token_uid(MODEL, int(t))) for s in states for t in rng.choice(VOCAB, K, replace=False)]
    rel = lambda name, pairs: _table(name, len(pairs), {"from": [a for a, _ in pairs], "to": [b for _, b in pairs]}, rng)  # noqa: E731
    row = {c: None for c in schema.NODE_TABLES["Pass"]} | {"uid": uid, "model": MODEL, "prompt": f"bench {i}"}
    return PassGraph(row, _table("HiddenState", n, {"uid": states, "pass": [uid] * n}, rng),
                     rel("FLOWS_TO", flows), rel("ACTIVATES", acts), rel("PROMOTES", proms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=os.environ.get("LENSGRAPH_STORE", ""), help="neo4j://user:pass@host:7687[/db]")
    ap.add_argument("--passes", type=int, default=3, help="passes written per batch size")
    ap.add_argument("--batches", default="10000,20000,50000", help="batch sizes (rows per transaction) to compare")
    args = ap.parse_args()
    from lensgraph.store.neo4j import Neo4jStore, is_neo4j_address

    if not is_neo4j_address(args.store):
        sys.exit("bench/neo4j_write.py needs a Neo4j server: --store neo4j://user:pass@host:7687 (or LENSGRAPH_STORE)")
    try:
        store = Neo4jStore(args.store)
    except StoreError as e:
        sys.exit(f"no Neo4j to benchmark against: {e}")
    rng = np.random.default_rng(0)
    try:
        t = time.perf_counter()
        static = model_graph(rng)
        store.write_model(static)
        n_static = static.tokens.num_rows + static.neurons.num_rows
        print(f"static nodes: {n_static:,} MERGEd in {time.perf_counter() - t:.1f} s")
        graphs = [pass_graph(i, rng) for i in range(args.passes * len(args.batches.split(",")))]
        for b, size in enumerate(int(s) for s in args.batches.split(",")):
            store.batch_rows = size
            rates = []
            for g in graphs[b * args.passes:(b + 1) * args.passes]:
                t = time.perf_counter()
                store.write_pass(g)
                rates.append(g.n_rows / (time.perf_counter() - t))
            print(f"batch {size:>6,} rows: median {statistics.median(rates):>9,.0f} rows/s over {len(rates)} passes "
                  f"of {graphs[0].n_rows:,} rows")
    finally:  # leave the database as it was
        for g in locals().get("graphs", []):
            store._delete_pass(g.uid)
        for label in ("Token", "Neuron"):
            while store._run(f"MATCH (n:{label} {{model: $m}}) WITH n LIMIT 10000 DETACH DELETE n "
                             "RETURN count(*) AS n", {"m": MODEL})[0]["n"]:
                pass
        store._run("MATCH (m:Model {name: $m}) DELETE m", {"m": MODEL})
        store.close()


if __name__ == "__main__":
    main()
