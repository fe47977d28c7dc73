"""Where a factored projection's time goes on one core: the matmul that makes a tile of logits, and the scan
that reads it.

    python bench/scan.py [--vocab 49152] [--d-head 64] [--rows 768] [--reps 10]

A circuit's rows are projected as LogitLens._factored projects them: TILE_ROWS x TILE tiles of u @ M, each
scanned (ingest/scan.py) while it is in cache, one thread (the projection runs one circuit per core). The
circuit and rows are random, of SmolLM2's shape by default. Printed: the matmul alone (GFLOP/s and ns a
logit), matmul and scan together, the scan's share, and the tile's efficiency against the matmul alone;
minima over --reps, the two measured alternately, as the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/ (whose ingest.py is a script)

from ingest.lens import TILE, TILE_ROWS  # noqa: E402
from ingest.scan import Scan  # noqa: E402


def project(U: torch.Tensor, M: torch.Tensor, tracked: np.ndarray, k: int, scan: bool) -> None:
    """U [R, d_head] through M [d_head, vocab] by tiles, each scanned when `scan`."""
    vocab = M.shape[1]
    buffer = torch.empty(min(TILE_ROWS, U.shape[0]), min(TILE, vocab))
    for first in range(0, U.shape[0], TILE_ROWS):
        u, ids = U[first:first + TILE_ROWS], tracked[first:first + TILE_ROWS]
        state = Scan.start(np.zeros(ids.shape, np.float32), ids, k)
        for start in range(0, vocab, TILE):
            logits = buffer[:len(u), :min(TILE, vocab - start)]
            torch.matmul(u, M[:, start:start + TILE], out=logits)
            if scan:
                state.fold(logits.numpy(), start, parallel=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--d-head", type=int, default=64)
    parser.add_argument("--rows", type=int, default=768, help="rows through one head's circuit")
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(args.d_head, args.vocab, generator=gen) * 0.3
    U = torch.randn(args.rows, args.d_head, generator=gen) * 0.4
    tracked = np.random.default_rng(0).integers(0, args.vocab, (args.rows, 2))
    project(U, M, tracked, 10, True)  # compiles the scan
    matmul, both = [], []
    for _ in range(args.reps):
        for scan, times in ((False, matmul), (True, both)):
            t0 = time.perf_counter()
            project(U, M, tracked, 10, scan)
            times.append(time.perf_counter() - t0)
    logits = args.rows * args.vocab
    mm, total = min(matmul), min(both)
    print(f"one core, {args.rows} rows x {args.vocab} tokens, d_head {args.d_head}, tiles {TILE_ROWS} x {TILE}, "
          f"minima of {args.reps}")
    print(f"  matmul alone     {1e9 * mm / logits:6.3f} ns a logit  "
          f"{2 * logits * args.d_head / mm / 1e9:6.1f} GFLOP/s")
    print(f"  matmul and scan  {1e9 * total / logits:6.3f} ns a logit")
    print(f"  scan             {1e9 * (total - mm) / logits:6.3f} ns a logit  "
          f"{(total - mm) / total:.0%} of the tile's time")
    print(f"  efficiency       {mm / total:.0%} of the matmul's own rate")


if __name__ == "__main__":
    main()
