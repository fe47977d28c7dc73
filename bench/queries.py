"""Query latency: the median of repeated warm runs of every query module on a store of many SmolLM2 passes.

    python bench/queries.py --store bench.lbug [--passes 1000] [--real 100] [--repeat 5]

Tops the store up to --passes complete passes first. --real of them are real passes (the France and IOI
prompts, then data/known_facts.json, ingested in batches as the worker does); the rest are copies of those,
each written with its original, in one transaction, through the store's own write path under its own uid and prompt
(`<prompt> [copy i]`). Copies cost a write instead of a pass, so a 1,000-pass store takes minutes, not an
hour; cross-pass queries then scan and group as many rows as on 1,000 real passes (recurring neurons recur
more often than they would). Targets (issue 8, warm medians): a pass's reduced graph < 100 ms, heads
promoting a token across all passes < 500 ms, recurring neurons across all passes < 3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lensgraph.errors import StoreError  # noqa: E402
from lensgraph.records import PassGraph  # noqa: E402
from lensgraph.store import Store, open_store  # noqa: E402
from queries import catalog, run  # noqa: E402
from queries.docgen import EXAMPLES, FRANCE, IOI  # noqa: E402
from queries.subgraphs import flow_routes, visit_graph  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MS = {"visit_graph (all layers)": 100, "heads-promoting-summary": 500, "recurring-neurons": 3000}
CROSS_PASS = {"heads-promoting-summary", "heads-suppressing-summary", "recurring-neurons", "trajectory-mean",
              "intersection", "passes"}
BATCH = 32


def copy_of(graph: PassGraph, i: int) -> PassGraph:
    """The same pass under another uid and prompt: every string column that holds the pass uid is rewritten."""
    old, new = graph.uid, f"{graph.uid}c{i}"

    def rewrite(table: pa.Table) -> pa.Table:
        return table.from_arrays([pc.replace_substring(c, old, new) if pa.types.is_string(c.type) else c
                                  for c in table.columns], schema=table.schema)

    return PassGraph({**graph.pass_, "uid": new, "prompt": f"{graph.pass_['prompt']} [copy {i}]"},
                     rewrite(graph.states), rewrite(graph.flows), rewrite(graph.activates), rewrite(graph.promotes))


class CopyingStore:
    """A store whose write_passes also writes `copies` copies of each pass, in the same transaction."""

    def __init__(self, store: Store, copies: int) -> None:
        self.store, self.copies = store, copies

    def pass_status(self, uid: str) -> bool | None:
        return self.store.pass_status(uid)

    def write_passes(self, graphs: list[PassGraph]) -> list[bool]:
        written = []
        for g in graphs:
            written += self.store.write_passes([g, *(copy_of(g, i) for i in range(self.copies))])[:1]
        return written


def top_up(path: str, n: int, real: int) -> None:
    """Fill the store to n complete passes: `real` real ones, each followed by its share of copies."""
    store = open_store(path)
    try:
        have = len(run(store, "passes"))
        if have >= n:
            return
        facts = [r["prompt"] for r in json.loads((ROOT / "data" / "known_facts.json").read_text())]
        todo = list(dict.fromkeys([FRANCE, IOI, *facts]))[:real]
        copies = max(0, -(-n // len(todo)) - 1)
        from ingest.pipeline import Ingestor
        from ingest.prompts import PromptSpec

        ingestor = Ingestor("smollm2-135m")
        if not store.has_model(ingestor.loaded.name):
            store.write_model(ingestor.static())
        start = time.perf_counter()
        target = CopyingStore(store, copies)
        for i in range(0, len(todo), BATCH):
            ingestor.run_batch(target, [ingestor.prepare(PromptSpec(p)) for p in todo[i:i + BATCH]])
            print(f"\ringested {min(i + BATCH, len(todo))}/{len(todo)} real passes, {copies} copies each "
                  f"({time.perf_counter() - start:.0f} s)", end="", file=sys.stderr)
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
        try:
            ms, rows = median_ms(fn, repeat)
        except StoreError as e:  # e.g. the buffer pool is too small for this query: report it, go on
            print(f"{name}: {e}", file=sys.stderr)
            out.append((name, 0, float("nan")))
            continue
        out.append((name, len(rows), ms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="bench.lbug")
    parser.add_argument("--passes", type=int, default=1000, help="complete passes the store should hold")
    parser.add_argument("--real", type=int, default=100, help="how many of them are real passes (the rest copies)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (after one warm-up)")
    args = parser.parse_args()
    top_up(args.store, args.passes, args.real)
    store = open_store(args.store, read_only=True)
    try:
        n = len(run(store, "passes"))
        results = bench(store, args.repeat)
    finally:
        store.close()
    path = Path(args.store)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    print(f"{n} passes in {args.store} ({size / 1e9:.1f} GB, {size / n / 1e6:.1f} MB per pass, the model's "
          f"static nodes included); median of {args.repeat} warm runs")
    print(f"{'query':<28} {'rows':>6} {'median ms':>10}  {'scope':<10}  target")
    for name, rows, ms in results:
        scope = "all passes" if name in CROSS_PASS else "one pass"
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"< {target} ms: {'meets' if ms < target else 'MISSES'}"
        print(f"{name:<28} {rows:>6} {ms:>10.1f}  {scope:<10}  {verdict}")


if __name__ == "__main__":
    main()
