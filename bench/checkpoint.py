"""LadybugDB checkpoint cost as a store grows, with relationships into fixed nodes stored both ways or forward only.

    python bench/checkpoint.py [--passes 96]

SmolLM2-sized synthetic passes (7,800 states, 63,000 ACTIVATES rows into 63,000 fixed neurons), each
checkpointed after its commit as the embedded store does. Stored both ways, the backward index groups the rows
by neuron, so every checkpoint rewrites it whole and grows with the store; forward only, it stays flat
(lensgraph/store/embedded.py FORWARD_ONLY).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

NEURONS, STATES = 63_000, 7_800


def run(direction: str, passes: int) -> list[float]:
    import ladybug

    db = ladybug.Database(tempfile.mkdtemp() + "/x.lbug", buffer_pool_size=1 << 30, auto_checkpoint=False)
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE H(uid STRING, PRIMARY KEY(uid))")
    conn.execute("CREATE NODE TABLE N(uid STRING, PRIMARY KEY(uid))")
    storage = "" if direction == "both" else " WITH (storage_direction = 'fwd')"
    conn.execute(f"CREATE REL TABLE ACT(FROM H TO N, coef DOUBLE, rank INT64){storage}")
    neurons = pa.table({"uid": [f"n{i}" for i in range(NEURONS)]})  # noqa: F841 — COPY reads it by name
    conn.execute("COPY N FROM neurons")
    rng, times = np.random.default_rng(0), []
    for p in range(passes):
        states = pa.table({"uid": [f"p{p}/h{i}" for i in range(STATES)]})  # noqa: F841
        conn.execute("COPY H FROM states")
        src = np.repeat([f"p{p}/h{i}" for i in range(60)], NEURONS // 60 + 1)[:NEURONS]
        act = pa.table({"from": src, "to": neurons["uid"], "coef": rng.random(NEURONS),  # noqa: F841
                        "rank": np.arange(NEURONS)})
        conn.execute("COPY ACT FROM act")
        t = time.perf_counter()
        conn.execute("CHECKPOINT")
        times.append(time.perf_counter() - t)
    conn.close()
    db.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=96)
    args = parser.parse_args()
    for direction in ("both", "fwd"):
        times = run(direction, args.passes)
        first, last = statistics.median(times[:8]), statistics.median(times[-8:])
        print(f"{direction:>4}: checkpoint after each pass, median of the first 8 {first:.2f} s, of the last 8 "
              f"{last:.2f} s ({last / first:.1f}x after {args.passes} passes)")


if __name__ == "__main__":
    main()
