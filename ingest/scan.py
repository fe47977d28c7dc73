"""One compiled pass over each row of logits: its softmax entropy and log-normaliser, its k highest and k
lowest tokens, and the rank of tracked tokens.

torch needs six sweeps of a row for this (softmax, E_p[logit], two topk, two comparisons), each allocating
and, for large chunks, each going to memory. Here a row is read while it sits in the core's cache, rows run
in parallel, and the loops over the vocabulary vectorise: exp is Cephes' single-precision polynomial
(within 2 ulp, as accurate as torch's), written so that LLVM vectorises it. The top and bottom k are kept
by insertion, rarely taken for k << vocab, and only in blocks of logits whose extremes could enter them;
ties keep the lower token id first, so results are deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_FAST = {"reassoc", "contract", "nsz"}  # lets the sums vectorise; no change to what is summed
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_UNDER = np.float32(-87.0)  # exp below this is < 2**-125 of the largest term: counted as 0


_BLOCK = 64  # logits per block: a block whose extremes cannot enter the top or bottom k is skipped


@njit(fastmath=_FAST, cache=True, nogil=True)
def _exp_terms(row: np.ndarray, mx: np.float32, y: np.ndarray, scale_bits: np.ndarray) -> tuple[float, float]:
    """sum(exp(row - mx)) and sum(exp(row - mx) * (row - mx)) (Cephes expf, vectorised)."""
    n = row.shape[0]
    for j in range(n):
        x = max(row[j] - mx, _UNDER)
        fx = np.floor(x * _LOG2E + np.float32(0.5))
        r = x - fx * _LN2_HI - fx * _LN2_LO
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        y[j] = (p * r * r + r + np.float32(1.0)) if row[j] - mx > _UNDER else np.float32(0.0)
        scale_bits[j] = (np.int32(fx) + np.int32(127)) << np.int32(23)  # 2**fx as float bits
    scale = scale_bits.view(np.float32)
    total = np.float32(0.0)
    moment = np.float32(0.0)
    for j in range(n):
        e = y[j] * scale[j]
        total += e
        moment += e * (row[j] - mx)
    return total, moment


@njit(parallel=True, cache=True, nogil=True)
def scan(logits: np.ndarray, k: int, tracked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """logits [n, vocab] float32, tracked [n, m] token ids ->
    log-normaliser [n], entropy [n] (nats, float64), top ids [n, k], top logits [n, k] (highest first),
    bottom ids [n, k] (lowest first), bottom logits [n, k], ranks [n, m] (1 + the number of tokens with a
    strictly higher logit)."""
    n, vocab = logits.shape
    m = tracked.shape[1]
    lse = np.empty(n)
    entropy = np.empty(n)
    top_i = np.empty((n, k), np.int64)
    top_v = np.empty((n, k), np.float32)
    bot_i = np.empty((n, k), np.int64)
    bot_v = np.empty((n, k), np.float32)
    ranks = np.empty((n, m), np.int64)
    for r in prange(n):
        row = logits[r]
        tv = np.full(k, -np.inf, np.float32)  # ascending: tv[0] is the lowest of the current top k
        ti = np.full(k, -1, np.int64)
        bv = np.full(k, -np.inf, np.float32)  # negated logits, ascending: -bv[0] is the highest of the bottom k
        bi = np.full(k, -1, np.int64)
        for start in range(0, vocab, _BLOCK):
            stop = min(start + _BLOCK, vocab)
            hi, lo = _bounds(row, start, stop)
            if hi > tv[0] or ti[0] < 0:
                _keep(row, start, stop, np.float32(1.0), tv, ti)
            if -lo > bv[0] or bi[0] < 0:
                _keep(row, start, stop, np.float32(-1.0), bv, bi)
        mx = tv[k - 1]
        total, moment = _exp_terms(row, mx, np.empty(vocab, np.float32), np.empty(vocab, np.int32))
        lse[r] = float(mx) + np.log(float(total))
        entropy[r] = np.log(float(total)) - float(moment) / float(total)
        for t in range(m):
            ranks[r, t] = _count_above(row, row[tracked[r, t]]) + 1
        for p in range(k):
            top_i[r, p] = ti[k - 1 - p]
            top_v[r, p] = tv[k - 1 - p]
            bot_i[r, p] = bi[k - 1 - p]
            bot_v[r, p] = -bv[k - 1 - p]
    return lse, entropy, top_i, top_v, bot_i, bot_v, ranks


@njit(fastmath=_FAST, cache=True, nogil=True)
def _bounds(row: np.ndarray, start: int, stop: int) -> tuple[np.float32, np.float32]:
    """The highest and lowest logit of row[start:stop]."""
    hi = row[start]
    lo = row[start]
    for j in range(start + 1, stop):
        hi = max(hi, row[j])
        lo = min(lo, row[j])
    return hi, lo


@njit(cache=True, nogil=True)
def _keep(row: np.ndarray, start: int, stop: int, sign: np.float32, vals: np.ndarray, ids: np.ndarray) -> None:
    """Insert the tokens of row[start:stop] whose sign·logit beats the current k kept (vals ascending, in
    sign·logit; on a tie the earlier, lower id stays): sign 1 keeps the top k, -1 the bottom k."""
    k = vals.shape[0]
    for j in range(start, stop):
        x = sign * row[j]
        if x > vals[0] or ids[0] < 0:
            p = 0
            while p + 1 < k and (vals[p + 1] < x or ids[p + 1] < 0):
                vals[p] = vals[p + 1]
                ids[p] = ids[p + 1]
                p += 1
            vals[p] = x
            ids[p] = j


@njit(fastmath=_FAST, cache=True, nogil=True)
def _count_above(row: np.ndarray, own: np.float32) -> int:
    above = 0
    for j in range(row.shape[0]):
        above += row[j] > own
    return above
