"""How many rows per second the neo4j driver encodes into Bolt, with and without neo4j-rust-ext.

Runs here, without a server: it times the driver's PackStream Packer on realistic `$rows` batches (the
parameters of one UNWIND write: HiddenState rows and ACTIVATES rows) in two subprocesses, one where the Rust
extension imports and one where it is hidden, and prints the medians and the ratio.

    python bench/bolt_encode.py [--rows 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, random, sys, time
if sys.argv[1] == "python":
    sys.modules["neo4j._rust"] = None  # hide the extension: the driver falls back to pure Python
from neo4j._codec.packstream.v1 import Packer, _rust_pack
rows, repeats = int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = [" Paris", " France", " the", ",", " capital", " of", "\n", " is", " a", " London"]
def state(i):
    return {"uid": f"smollm2-135m@7d11a9f2605810a2/L{i % 30}/head/h{i % 9}", "pass": "smollm2-135m@7d11a9f2605810a2",
            "layer": i % 30, "kind": "head", "head": i % 9, "position": 4, "source_token": " is",
            "norm": random.random() * 10, "entropy": random.random() * 8,
            "top_tokens": random.choices(words, k=10), "top_probs": [random.random() for _ in range(10)],
            "bottom_tokens": random.choices(words, k=10), "bottom_probs": [random.random() for _ in range(10)],
            "target_rank": i, "target_prob": random.random(), "pred_rank": i, "pred_prob": random.random()}
def activates(i):
    return {"from": f"smollm2-135m@7d11a9f2605810a2/L{i % 30}/ln2", "to": f"smollm2-135m/L{i % 30}/mlp/n{i % 1536}",
            "coef": random.gauss(0, 1), "pre": random.gauss(0, 1), "rank": i % 1536 + 1}
class Sink:
    def __init__(self): self.n = 0
    def write(self, b): self.n += len(b)
out = {"rust": _rust_pack is not None}
for name, make in (("HiddenState", state), ("ACTIVATES", activates)):
    batch = {"rows": [make(i) for i in range(rows)]}
    times = []
    for _ in range(repeats):
        sink = Sink()
        t = time.perf_counter()
        Packer(sink).pack(batch)
        times.append(time.perf_counter() - t)
    out[name] = {"seconds": times, "bytes": sink.n}
print(json.dumps(out))
"""


def measure(mode: str, rows: int, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(rows), str(repeats)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000, help="rows per batch (the store's default batch)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rust, python = measure("rust", args.rows, args.repeats), measure("python", args.rows, args.repeats)
    if not rust["rust"]:
        sys.exit("neo4j-rust-ext is not importable here: pip install 'lensgraph[neo4j]'")
    assert not python["rust"]
    print(f"Bolt (PackStream) encoding of one {args.rows}-row $rows batch, median of {args.repeats}:")
    for table in ("HiddenState", "ACTIVATES"):
        r, p = (statistics.median(m[table]["seconds"]) for m in (rust, python))
        size = rust[table]["bytes"] / args.rows
        print(f"  {table:11s} ({size:4.0f} B/row)  pure Python {args.rows / p:>10,.0f} rows/s   "
              f"neo4j-rust-ext {args.rows / r:>10,.0f} rows/s   ratio {p / r:5.1f}x")


if __name__ == "__main__":
    main()
