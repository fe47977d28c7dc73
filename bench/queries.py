"""Query latency: the median of repeated warm runs of every query module on a store of many SmolLM2 passes.

    python bench/queries.py --store bench.lbug --passes 200 [--repeat 5]

Tops the store up to --passes complete passes first (the France and IOI prompts, then data/known_facts.json),
then runs each query with the parameters its docs example uses (queries/docgen.py), plus the subgraph
wrappers. Targets (issue 3): one pass's reduced graph < 100 ms; cross-prompt aggregates < 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lensgraph.store import Store, open_store  # noqa: E402
from queries import catalog, run  # noqa: E402
from queries.docgen import EXAMPLES, FRANCE, IOI  # noqa: E402
from queries.subgraphs import flow_routes, visit_graph  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CROSS_PASS = {"heads-promoting-summary", "heads-suppressing-summary", "recurring-neurons", "trajectory-mean",
              "intersection", "passes"}


def top_up(path: str, n: int) -> None:
    """Ingest known-facts prompts until the store holds n complete passes."""
    store = open_store(path)
    try:
        have = {r["prompt"] for r in run(store, "passes")}
        facts = [r["prompt"] for r in json.loads((ROOT / "data" / "known_facts.json").read_text())]
        todo = [p for p in dict.fromkeys([FRANCE, IOI, *facts]) if p not in have][: max(0, n - len(have))]
        if not todo:
            return
        from ingest.pipeline import Ingestor
        from ingest.prompts import PromptSpec

        ingestor = Ingestor("smollm2-135m")
        if not store.has_model(ingestor.loaded.name):
            store.write_model(ingestor.static())
        start = time.perf_counter()
        for i, prompt in enumerate(todo, 1):
            ingestor.run(store, ingestor.prepare(PromptSpec(prompt)))
            print(f"\ringested {i}/{len(todo)} ({time.perf_counter() - start:.0f} s)", end="", file=sys.stderr)
        print(file=sys.stderr)
    finally:
        store.close()


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


def bench(store: Store, repeat: int) -> list[tuple[str, int, float]]:
    passes = {r["prompt"]: r["uid"] for r in run(store, "passes")}
    cases: dict[str, Callable[[], Any]] = {}
    for name in catalog():
        params = EXAMPLES[name](passes)
        cases[name] = lambda name=name, params=params: run(store, name, **params)
    france = passes[FRANCE]
    cases["visit_graph (3 layers)"] = lambda: visit_graph(store, france, 27, 29).nodes
    cases["visit_graph (all layers)"] = lambda: visit_graph(store, france).nodes
    cases["flow_routes (tau 0.04)"] = lambda: flow_routes(store, france).nodes
    out = []
    for name, fn in cases.items():
        ms, rows = median_ms(fn, repeat)
        out.append((name, len(rows), ms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="bench.lbug")
    parser.add_argument("--passes", type=int, default=200, help="complete passes the store should hold")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (after one warm-up)")
    args = parser.parse_args()
    top_up(args.store, args.passes)
    store = open_store(args.store, read_only=True)
    try:
        n = len(run(store, "passes"))
        results = bench(store, args.repeat)
    finally:
        store.close()
    print(f"{n} passes in {args.store}; median of {args.repeat} warm runs")
    print(f"{'query':<28} {'rows':>6} {'median ms':>10}  scope")
    for name, rows, ms in results:
        scope = "all passes" if name in CROSS_PASS else "one pass"
        print(f"{name:<28} {rows:>6} {ms:>10.1f}  {scope}")


if __name__ == "__main__":
    main()
