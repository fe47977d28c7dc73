"""Ingest benchmark: per-pass time split, rows/s, one-time static cost, projection efficiency.

    python bench/ingest.py [--models smollm2-135m,random:gpt2-small] [--prompts 10] [--cached-static]

Prints medians over the prompts (the first N of data/known_facts.json) and ratios measured in this one
run: batched projection vs a naive one-vector-at-a-time baseline, and projection throughput vs the
machine's fp32 matmul rate measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def matmul_gflops(d: int, vocab: int) -> float:
    import torch

    X, W = torch.randn(512, d), torch.randn(d, vocab)
    X @ W
    times = []
    for _ in range(5):
        t = time.perf_counter()
        X @ W
        times.append(time.perf_counter() - t)
    return 2 * 512 * d * vocab / statistics.median(times) / 1e9


def naive_vectors_per_s(lens, X) -> float:  # noqa: ANN001
    """The baseline: project one vector at a time (what VISIT does per call)."""
    import torch

    t = time.perf_counter()
    for x in X:
        torch.softmax(lens.logits(x[None]), -1).topk(10)
    return len(X) / (time.perf_counter() - t)


def bench_model(name: str, n_prompts: int, cached_static: bool) -> dict:
    import torch

    from ingest.pipeline import Ingestor
    from ingest.prompts import PromptSpec
    from lensgraph.store import open_store

    t = time.perf_counter()
    ingestor = Ingestor(name)
    load_s = time.perf_counter() - t
    spec = ingestor.loaded.spec
    if not cached_static:  # measure the one-time cost, not the cache
        os.environ["LENSGRAPH_CACHE"] = tempfile.mkdtemp(prefix="lensgraph-bench-cache-")
    t = time.perf_counter()
    static = ingestor.static()
    static_s = time.perf_counter() - t
    store = open_store(os.path.join(tempfile.mkdtemp(prefix="lensgraph-bench-"), "bench.lbug"))
    t = time.perf_counter()
    store.write_model(static)
    model_write_s = time.perf_counter() - t
    facts = json.loads((ROOT / "data" / "known_facts.json").read_text())[:n_prompts]
    results = []
    for fact in facts:
        p = ingestor.prepare(PromptSpec(fact["prompt"]))
        results.append((p, ingestor.run(store, p)))
    store.close()
    med = lambda key: statistics.median(r.timings[key] for _, r in results)  # noqa: E731
    rows = statistics.median(r.rows for _, r in results)
    tokens = statistics.median(p.position + 1 for p, _ in results)
    n_nodes = [spec.n_layers * (8 + spec.n_heads * (2 + 2 * (p.position + 1))) + 1 for p, _ in results]
    vectors = statistics.median(n_nodes)
    flops = 2 * vectors * spec.d_model * spec.vocab_size
    rate = matmul_gflops(spec.d_model, spec.vocab_size)
    X = torch.randn(64, spec.d_model)
    naive = naive_vectors_per_s(ingestor.lens, X)
    batched = vectors / med("project")
    total = med("forward") + med("project") + med("build") + med("write")
    return {
        "model": name, "layers": spec.n_layers, "d_model": spec.d_model, "vocab": spec.vocab_size,
        "prompts": len(results), "median_tokens": tokens, "load_s": load_s,
        "static_s": static_s, "static_cached": cached_static, "model_write_s": model_write_s,
        "forward_s": med("forward"), "project_s": med("project"), "build_s": med("build"), "write_s": med("write"),
        "pass_s": total, "prompts_per_min": 60 / total, "rows_per_pass": rows,
        "write_rows_per_s": rows / med("write"), "vectors_per_pass": vectors,
        "batched_vectors_per_s": batched, "naive_vectors_per_s": naive, "batched_over_naive": batched / naive,
        "matmul_gflops": rate, "projection_efficiency": flops / med("project") / 1e9 / rate,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,random:gpt2-small,gemma3-270m")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--cached-static", action="store_true", help="reuse the static cache (skip its cost)")
    args = parser.parse_args()
    import torch

    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus")
    for name in args.models.split(","):
        r = bench_model(name, args.prompts, args.cached_static)
        print(f"\n== {r['model']}  ({r['layers']} layers, d_model {r['d_model']}, vocab {r['vocab']}; "
              f"{r['prompts']} prompts, median {r['median_tokens']} tokens)")
        print(f"  one-time: load {r['load_s']:.1f} s, static neurons {r['static_s']:.1f} s"
              f"{' (read from the cache where one existed)' if r['static_cached'] else ''}, write static nodes {r['model_write_s']:.1f} s")
        print(f"  per pass (median): forward {r['forward_s']:.3f} s | projection {r['project_s']:.3f} s | "
              f"graph build {r['build_s']:.3f} s | write {r['write_s']:.3f} s | total {r['pass_s']:.2f} s "
              f"({r['prompts_per_min']:.1f} prompts/min)")
        print(f"  rows per pass {r['rows_per_pass']:.0f}, written at {r['write_rows_per_s']:,.0f} rows/s")
        print(f"  projection: {r['vectors_per_pass']:.0f} vectors/pass, {r['batched_vectors_per_s']:,.0f} vectors/s "
              f"batched vs {r['naive_vectors_per_s']:,.0f}/s naive = {r['batched_over_naive']:.1f}x; "
              f"efficiency {100 * r['projection_efficiency']:.0f}% of the {r['matmul_gflops']:.0f} GFLOP/s "
              "fp32 matmul rate measured here")
        print(f"  peak RSS so far {r['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
    main()
