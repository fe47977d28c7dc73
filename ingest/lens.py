"""The logit lens: any residual-space vector read through the model's final norm and unembedding."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ingest.circuits import CircuitCache
from ingest.cores import CORES, one_torch_thread
from ingest.scan import Scan

CHUNK_ELEMENTS = 2**23  # logits per chunk of signed_stats (32 MB of fp32): bounds memory, stays near the cache
FACTOR_MARGIN = 0.7  # factor a circuit only when it needs under this share of the direct FLOPs
# A row's logits (factored or direct) are made and scanned TILE_ROWS x TILE tokens at a time (4 MB), which
# stays in cache between its matmul and its scan: with an inner dimension of only d_head, whole rows of logits
# (16 MB per 85 rows) ran the matmul at half the rate of these tiles (65 against 124 GFLOP/s for SmolLM2's shape)
TILE_ROWS, TILE = 256, 4096


@dataclass
class LensStats:
    """Annotations of N vectors (numpy, one row each); ranks are 1-based."""

    norm: np.ndarray  # [N] L2 norm of the vector itself
    entropy: np.ndarray  # [N] nats
    top_ids: np.ndarray  # [N, k] most probable tokens
    top_probs: np.ndarray  # [N, k]
    bottom_ids: np.ndarray  # [N, k] least probable tokens
    bottom_probs: np.ndarray  # [N, k]
    ranks: dict[str, np.ndarray]  # name -> [N] rank of a tracked token (e.g. target, prediction)
    probs: dict[str, np.ndarray]  # name -> [N] its probability

    @classmethod
    def empty(cls, norm: np.ndarray, k: int, names: list[str]) -> LensStats:
        n = len(norm)
        return cls(norm, np.zeros(n), np.zeros((n, k), np.int64), np.zeros((n, k)), np.zeros((n, k), np.int64),
                   np.zeros((n, k)), {t: np.zeros(n, np.int64) for t in names}, {t: np.zeros(n) for t in names})

    def take(self, rows: np.ndarray | slice) -> LensStats:
        return LensStats(self.norm[rows], self.entropy[rows], self.top_ids[rows], self.top_probs[rows],
                         self.bottom_ids[rows], self.bottom_probs[rows],
                         {t: r[rows] for t, r in self.ranks.items()}, {t: p[rows] for t, p in self.probs.items()})


@dataclass
class Factored:
    """Rows of X that are X[rows] = U[h] @ A[h] for the H heads of one circuit (e.g. a layer's W_O).

    The final norm is x -> s(x)·(x C)·diag(g) + b (C centres for LayerNorm, is the identity for RMSNorm), so
    their logits are s(x)·U[h] @ M[h] + b W_U + b_U with M[h] = A[h] C diag(g) W_U [d_head, vocab]: a row then
    costs d_head instead of d_model multiply-adds per token. M costs d_head·d_model·vocab per head to build, so
    it pays only when the circuit has enough rows, or once it is cached (ingest/circuits.py); blocks with the
    same `key` share one M.
    """

    key: tuple  # identifies A, e.g. (layer, "W_O")
    A: torch.Tensor  # [H, d_head, d_model]
    U: torch.Tensor  # [H, R, d_head]
    rows: np.ndarray  # [H*R] their indices among the rows stats() annotates, head-major

    def vectors(self) -> torch.Tensor:
        """The rows themselves [H*R, d_model], head-major: built when needed, never kept (they are most of
        a pass's vectors)."""
        return torch.bmm(self.U, self.A).reshape(-1, self.A.shape[-1])


class LogitLens:
    def __init__(self, final_norm: nn.Module, W_U: torch.Tensor, b_U: torch.Tensor | None,
                 softcap: float | None = None, circuits: CircuitCache | None = None) -> None:
        self.final_norm = final_norm
        self.W_U = W_U.contiguous()  # [d_model, vocab]
        self.b_U = b_U
        self.softcap = softcap
        self.circuits = circuits  # where built circuits are kept (None: built in every batch that factors)
        # vectors per matmul: large enough to be compute-bound, small enough to bound memory
        self.chunk = max(16, min(1024, CHUNK_ELEMENTS // W_U.shape[1]))

    def _affine(self, X: torch.Tensor) -> torch.Tensor:
        out = self.final_norm(X) @ self.W_U
        return out if self.b_U is None else out + self.b_U

    def _cap(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.softcap is None else self.softcap * torch.tanh(logits / self.softcap)

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """[N, d_model] -> [N, vocab], exactly as the model computes its output logits."""
        return self._cap(self._affine(X))

    def offset(self) -> torch.Tensor:
        """c such that affine(-x) = 2c - affine(x) for every x (before any soft-capping): exact, as the
        final norm is an odd function of its input plus a constant (its bias) and the unembedding is affine."""
        x = torch.ones(1, self.W_U.shape[0])
        return ((self._affine(x) + self._affine(-x)) / 2)[0]

    # -- the final norm as scale · linear map + bias, for factored projections --------------------------
    @cached_property
    @torch.no_grad()
    def basis(self) -> tuple[bool, torch.Tensor, torch.Tensor] | None:
        """(centred, g, b) with final_norm(x) = s(x)·(x C)·g + b, read off the module itself (g up to a
        positive factor, which s absorbs) and checked on random vectors; None if the norm is not of that form."""
        d = self.W_U.shape[0]
        b = self.final_norm(torch.zeros(1, d))[0]
        centred = bool((self.final_norm(torch.ones(1, d))[0] - b).abs().max() <= 1e-6 * (1 + b.abs().max()))
        probe = torch.where(torch.arange(d) % 2 == 0, 1.0, -1.0)
        probe_c = probe - probe.mean() if centred else probe
        g = (self.final_norm(probe[None])[0] - b) / probe_c
        basis = centred, g, b
        X = torch.randn(64, d) * torch.logspace(-2, 2, 64)[:, None]
        expected = self.final_norm(X)
        if not torch.allclose(self._rebuild(X, basis), expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max())):
            return None
        return basis

    def _centre(self, X: torch.Tensor, centred: bool) -> torch.Tensor:
        return X - X.mean(-1, keepdim=True) if centred else X

    def _scale(self, X: torch.Tensor, basis: tuple[bool, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """s(x) for each row of X [N, d_model] (0 where x C g = 0: the norm then gives b alone)."""
        centred, g, b = basis
        den = (self._centre(X, centred) * g).norm(dim=-1)
        num = (self.final_norm(X) - b).norm(dim=-1)
        return torch.where(den > 0, num / den.clamp(min=torch.finfo(X.dtype).tiny), 0.0)

    def _rebuild(self, X: torch.Tensor, basis: tuple[bool, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        centred, g, b = basis
        return self._scale(X, basis)[:, None] * self._centre(X, centred) * g + b

    def circuit(self, A: torch.Tensor) -> torch.Tensor:
        """M = A C diag(g) W_U: [H, d_head, d_model] -> [H, d_head, vocab]."""
        centred, g, _ = self.basis
        H, d_head, d = A.shape
        return (self._centre(A.reshape(-1, d), centred) * g).matmul(self.W_U).reshape(H, d_head, -1)

    def _cached(self, key: tuple) -> bool:
        return self.circuits is not None and self.circuits.has(key)

    def _circuit_of(self, f: Factored) -> torch.Tensor:
        """f's circuit from the cache, or built now (and cached)."""
        H, d_head, _ = f.A.shape
        M = None if self.circuits is None else self.circuits.get(f.key, (H, d_head, self.W_U.shape[1]))
        if M is None:
            M = self.circuit(f.A)
            if self.circuits is not None:
                self.circuits.put(f.key, M)
        return M

    def _circuit_flops(self, blocks: list[Factored]) -> float:
        """Multiply-adds of a circuit's rows through it, and of building it unless it is cached."""
        H, d_head, d = blocks[0].A.shape
        R = sum(f.U.shape[1] for f in blocks)
        return H * d_head * self.W_U.shape[1] * ((0 if self._cached(blocks[0].key) else d) + R)

    def _worth_factoring(self, blocks: list[Factored]) -> bool:
        H, _, d = blocks[0].A.shape
        R = sum(f.U.shape[1] for f in blocks)
        return self.basis is not None and self._circuit_flops(blocks) < FACTOR_MARGIN * R * H * d * self.W_U.shape[1]

    def plan(self, factored: Sequence[Factored]) -> tuple[list[list[Factored]], list[Factored]]:
        """How stats() projects the blocks: the circuits it factors (their blocks, grouped by key) and the
        blocks whose rows it projects directly."""
        by_key: dict[tuple, list[Factored]] = {}
        for f in factored:
            by_key.setdefault(f.key, []).append(f)
        circuits, direct = [], []
        for blocks in by_key.values():
            if self._worth_factoring(blocks):
                circuits.append(blocks)
            else:
                direct += blocks
        return circuits, direct

    def flops(self, n_vectors: int, factored: Sequence[Factored]) -> float:
        """The floating-point operations of that plan's matmuls (n_vectors rows given as vectors, and the
        blocks): circuits built (not those read from the cache), factored rows, direct rows."""
        circuits, direct = self.plan(factored)
        d, vocab = self.W_U.shape
        return 2.0 * ((n_vectors + sum(f.rows.size for f in direct)) * d * vocab
                      + sum(self._circuit_flops(blocks) for blocks in circuits))

    # -- annotation ------------------------------------------------------------------------------------
    def stats(self, X: torch.Tensor, k: int, tracked: dict[str, int | np.ndarray] | None = None,
              factored: Sequence[Factored] = ()) -> LensStats:
        """Annotate N rows: the rows of the `factored` blocks and, in order, the others, given as X
        [N - block rows, d_model]. `tracked` names a token per row (or one for all rows) whose rank and
        probability to report. A circuit's blocks are projected through it when that needs fewer FLOPs (the
        same logits up to float rounding); the other rows directly. Both are made and scanned a tile at a time,
        by jobs that each run on one thread (see `_one_thread_per_job`)."""
        n = X.shape[0] + sum(f.rows.size for f in factored)
        given = np.ones(n, bool)
        for f in factored:
            given[f.rows] = False
        rows = np.flatnonzero(given)
        if len(rows) != X.shape[0]:
            raise ValueError("X must hold exactly the rows that no factored block covers (blocks may not overlap)")
        tracked = tracked or {}
        ids = np.stack([np.broadcast_to(np.asarray(t, np.int64), (n,)) for t in tracked.values()], 1) \
            if tracked else np.zeros((n, 0), np.int64)
        out = LensStats.empty(np.zeros(n), k, list(tracked))
        circuits, direct = self.plan(factored)
        if direct:
            X = torch.cat([X, *(f.vectors() for f in direct)])
            rows = np.concatenate([rows, *(f.rows for f in direct)])
        out.norm[rows] = X.norm(dim=-1).double().numpy()
        Y = self.final_norm(X)  # [N', d_model]: the direct rows' logits are Y W_U + b_U
        jobs = [partial(self._factored, blocks, k, ids, out) for blocks in circuits]
        # the direct rows last, in tiles' worth of rows: small jobs that even out the threads' ends
        jobs += [partial(self._direct, Y[s:s + TILE_ROWS], rows[s:s + TILE_ROWS], k, ids, out)
                 for s in range(0, len(rows), TILE_ROWS)]
        _one_thread_per_job(jobs)
        return out

    @torch.no_grad()  # runs on a pool thread, where the caller's no_grad does not reach
    def _factored(self, blocks: list[Factored], k: int, ids: np.ndarray, out: LensStats) -> None:
        """Annotate the rows of one circuit's blocks: logits = (s(x)·u) M[h] + const."""
        M = self._circuit_of(blocks[0])  # [H, d_head, vocab]
        H, _, d = blocks[0].A.shape
        const = self._affine(torch.zeros(1, d))[0]
        scales = []
        for f in blocks:  # each block's vectors, only for their norms and final-norm scales
            V = f.vectors()
            out.norm[f.rows] = V.norm(dim=-1).double().numpy()
            scales.append(self._scale(V, self.basis).reshape(H, -1))
        U = torch.cat([f.U for f in blocks], 1)  # [H, R, d_head]
        rows = np.concatenate([f.rows.reshape(H, -1) for f in blocks], 1)  # [H, R]
        U = U * torch.cat(scales, 1)[:, :, None]  # s(x)·(u M) = (s(x)·u) M: the scale costs d_head, not vocab
        bias = const if bool(const.any()) else None
        buffer = torch.empty(min(TILE_ROWS, U.shape[1]), min(TILE, M.shape[-1]))  # reused: measured ~10% faster
        for h in range(H):
            for first in range(0, U.shape[1], TILE_ROWS):
                r = rows[h, first:first + TILE_ROWS]
                _store(out, r, self._tiled(U[h, first:first + TILE_ROWS], M[h], bias, ids[r], k, buffer))

    @torch.no_grad()
    def _direct(self, Y: torch.Tensor, rows: np.ndarray, k: int, ids: np.ndarray, out: LensStats) -> None:
        """Annotate rows whose final-norm outputs are Y [n <= TILE_ROWS, d_model]: logits = Y W_U + b_U."""
        buffer = torch.empty(Y.shape[0], min(TILE, self.W_U.shape[1]))
        _store(out, rows, self._tiled(Y, self.W_U, self.b_U, ids[rows], k, buffer))

    def _tiled(self, u: torch.Tensor, M: torch.Tensor, bias: torch.Tensor | None, tracked: np.ndarray, k: int,
               buffer: torch.Tensor) -> Scan:
        """The scan of logits u M + bias (u [n, d], M [d, vocab], tracked [n, m] token ids), made and scanned a
        tile at a time in `buffer` [>= n, TILE], on this thread alone (the caller runs its own threads)."""
        own = torch.einsum("nd,dnm->nm", u, M[:, tracked])  # the tracked tokens' logits
        state = Scan.start(self._cap(own if bias is None else own + bias[tracked]).numpy(), tracked, k)
        vocab = M.shape[-1]
        for start in range(0, vocab, TILE):
            stop = min(start + TILE, vocab)
            logits = buffer[:u.shape[0], :stop - start]
            if bias is None:
                torch.matmul(u, M[:, start:stop], out=logits)
            else:
                torch.addmm(bias[start:stop], u, M[:, start:stop], out=logits)
            state.fold(self._cap(logits).numpy(), start, parallel=False)
        return state

    def signed_stats(self, X: torch.Tensor, k: int, negated: bool = True) -> list[LensStats]:
        """Stats of X and, when `negated`, of -X too, from the same matmul (see `offset`)."""
        c = self.offset() if negated else None
        norm = X.norm(dim=-1).double().numpy()
        outs = [LensStats.empty(norm, k, []) for _ in range(2 if negated else 1)]
        none = np.zeros((X.shape[0], 0), np.int64)
        for start in range(0, X.shape[0], self.chunk):
            r = np.arange(start, min(start + self.chunk, X.shape[0]))
            affine = self._affine(X[start:start + self.chunk])
            _fill(outs[0], r, self._cap(affine), k, none[r])
            if c is not None:
                _fill(outs[1], r, self._cap(2 * c - affine), k, none[r])
        return outs


def _one_thread_per_job(jobs: list[Callable[[], None]]) -> None:
    """Run the jobs on a pool with one worker per core, each running single-threaded matmuls and scans on its
    own job (a circuit, or a tile's worth of direct rows): the cores stay on their own tiles instead of meeting
    at a barrier after every small matmul and scan (1.2x faster than the same tiles with both cores on each;
    1.55x with the tiles, against whole rows, for 64 SmolLM2 passes on 2 cores; the direct rows as jobs of
    their own instead of 2-thread matmuls after the circuits: 1.05-1.2x). A job starts only on a core that no
    write holds (ingest/cores.py). Raises what the jobs raise."""

    def on_a_free_core(job: Callable[[], None]) -> None:
        with CORES.job():
            job()

    with one_torch_thread(), ThreadPoolExecutor(CORES.total) as pool:
        list(pool.map(on_a_free_core, jobs))


def _fill(out: LensStats, rows: np.ndarray, logits: torch.Tensor, k: int, tracked: np.ndarray) -> None:
    """Write the annotations of logits [n, vocab] into rows `rows` of `out` (one compiled scan: ingest/scan.py)."""
    _store(out, rows, Scan.whole(logits.contiguous().numpy(), tracked, k))


def _store(out: LensStats, rows: np.ndarray, state: Scan) -> None:
    lse, out.entropy[rows], out.top_ids[rows], top_l, out.bottom_ids[rows], bot_l, ranks = state.result()
    out.top_probs[rows] = np.exp(top_l - lse[:, None])
    out.bottom_probs[rows] = np.exp(bot_l - lse[:, None])
    for j, name in enumerate(out.ranks):
        out.ranks[name][rows] = ranks[:, j]
        out.probs[name][rows] = np.exp(state.own[:, j] - lse)
