"""Worker and service benchmark: prompts per minute end to end, and the service's latency under load.

    python bench/worker.py [--model smollm2-135m] [--prompts 50] [--concurrency 20] [--requests 60]

1. Queues the first N prompts of data/known_facts.json (each tracking the model's prediction) in a fresh store's
   catalog and times `lensgraph worker --until-idle` as a user runs it: process start, model load, static
   neurons (from the cache after the first run) and every pass. Prints prompts per minute, with and without
   the start-up, and the median time per pass from the catalog's index.
2. Serves that store with uvicorn and sends `--requests` requests with `--concurrency` at a time, for a named
   query (target-heads) and for an SVG render (pass-layers of the last three layers). Prints median and p90
   latency and requests per second.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_worker(model: str, n: int, store: Path) -> dict:
    from ingest.prompts import PromptSpec
    from lensgraph.catalog import Catalog, catalog_url

    facts = json.loads((ROOT / "data" / "known_facts.json").read_text())[:n]
    catalog = Catalog(catalog_url(str(store)))
    catalog.submit(model, [PromptSpec(f["prompt"], None, f"known_facts[{i}]") for i, f in enumerate(facts)], None, 10)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lensgraph", "worker", "--until-idle", "--store", str(store)],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"the worker failed:\n{proc.stderr[-2000:]}")
    index = catalog.passes()
    counts = catalog.counts()
    catalog.close()
    per_pass = [sum(json.loads(p["timings"]).values()) for p in index if p["timings"]]
    return {"wall": wall, "counts": counts, "per_pass": per_pass, "index": index}


def latency(url: str, body: dict, n: int, concurrency: int) -> tuple[list[float], float]:
    import httpx

    def one(_: int) -> float:
        t = time.perf_counter()
        r = client.post(url, json=body, timeout=120)
        r.raise_for_status()
        return time.perf_counter() - t

    with httpx.Client(limits=httpx.Limits(max_connections=concurrency)) as client:
        one(0)  # warm up
        t = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            times = list(pool.map(one, range(n)))
        return times, n / (time.perf_counter() - t)


def serve(store: Path) -> tuple[str, object]:
    import uvicorn

    from lensgraph.catalog import Catalog, catalog_url
    from lensgraph.service import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(str(store), Catalog(catalog_url(str(store))))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--store", type=Path, help="Only the service part, on this existing store.")
    args = ap.parse_args()

    if args.store is None:
        store = Path(tempfile.mkdtemp(prefix="lensgraph-bench-worker-")) / "bench.lbug"
        w = run_worker(args.model, args.prompts, store)
        done = w["counts"]["done"]
        per_pass = statistics.median(w["per_pass"])
        print(f"worker: {args.model}, {done} of {args.prompts} prompts done ({w['counts']['failed']} failed) "
              f"in {w['wall']:.1f} s wall, start-up and model load included")
        print(f"  end to end:            {60 * done / w['wall']:.1f} prompts/min")
        print(f"  steady state:          {60 / per_pass:.1f} prompts/min (median pass {per_pass:.2f} s: "
              "forward + lens + build + write)")
    else:
        store = args.store

    base, server = serve(store)
    import httpx

    uid = httpx.get(f"{base}/api/passes").json()[0]["uid"]
    n_layers = httpx.post(f"{base}/api/cypher", json={"query": "MATCH (m:Model) RETURN m.n_layers AS n"}).json()["rows"][0]["n"]
    cases = {
        "named query target-heads": (f"{base}/api/queries/target-heads", {"params": {"k": 5}}),
        "SVG render pass-layers (3 layers)": (f"{base}/api/subgraphs/pass-layers/svg",
                                              {"params": {"pass": uid, "first": max(0, n_layers - 3)}}),
    }
    print(f"service: {args.requests} requests, {args.concurrency} at a time (one process, 2 shared cores)")
    for name, (url, body) in cases.items():
        times, rps = latency(url, body, args.requests, args.concurrency)
        times.sort()
        print(f"  {name:36s} median {1000 * statistics.median(times):7.0f} ms, p90 "
              f"{1000 * times[int(0.9 * len(times)) - 1]:7.0f} ms, {rps:5.1f} req/s")
    server.should_exit = True


if __name__ == "__main__":
    main()
