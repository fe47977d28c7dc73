"""One compiled pass over each row of logits: its softmax entropy and log-normaliser, its k highest and k
lowest tokens, and the rank of tracked tokens.

torch needs six sweeps of a row for this (softmax, E_p[logit], two topk, two comparisons), each allocating
and, for large chunks, each going to memory. Here a row is read while it sits in the core's cache, whole
or a vocabulary tile at a time (the running sums re-based when the maximum grows, as in online softmax),
rows in parallel or on the caller's threads, and the loops over the vocabulary vectorise: exp is Cephes'
single-precision polynomial (within 2 ulp, as accurate as torch's), written so that LLVM vectorises it.
The top and bottom k are kept by insertion, rarely taken for k << vocab, and only in blocks of logits of
which one could enter them; ties keep the lower token id first, so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

_FAST = {"reassoc", "contract", "nsz"}  # lets the sums vectorise; no change to what is summed
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_UNDER = np.float32(-87.0)  # exp below this is < 2**-125 of the largest term: counted as 0


_BLOCK = 64  # logits per block: a block none of which can enter the top or bottom k is skipped


@intrinsic
def _float_of_bits(typingctx, bits):  # noqa: ANN001, ANN202
    """The float32 whose bits are the int32 `bits` (LLVM's bitcast, which vectorises, unlike a view)."""
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(fastmath=_FAST, cache=True, nogil=True)
def _exp_terms(row: np.ndarray, mx: np.float32) -> tuple[float, float]:
    """sum(exp(row - mx)) and sum(exp(row - mx) * (row - mx)) (Cephes expf, vectorised: one sweep)."""
    total = np.float32(0.0)
    moment = np.float32(0.0)
    for j in range(row.shape[0]):
        d = row[j] - mx
        x = max(d, _UNDER)
        fx = np.floor(x * _LOG2E + np.float32(0.5))
        r = x - fx * _LN2_HI - fx * _LN2_LO
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        two_fx = _float_of_bits((np.int32(fx) + np.int32(127)) << np.int32(23))  # 2**fx
        e = (p * r * r + r + np.float32(1.0)) * two_fx if d > _UNDER else np.float32(0.0)
        total += e
        moment += e * d
    return total, moment


@dataclass
class Scan:
    """The running annotations of n rows of logits that arrive a vocabulary tile at a time (or whole): the
    softmax sums relative to the highest logit so far, the top and bottom k, and for each tracked token the
    number of tokens with a strictly higher logit than its own."""

    mx: np.ndarray  # [n] float32, the highest logit so far
    total: np.ndarray  # [n] float64, sum of exp(logit - mx)
    moment: np.ndarray  # [n] float64, sum of exp(logit - mx) * (logit - mx)
    top_v: np.ndarray  # [n, k] float32, ascending: top_v[:, 0] is the lowest of the top k
    top_i: np.ndarray  # [n, k] token ids (-1 while fewer than k are seen)
    bot_v: np.ndarray  # [n, k] float32 negated logits, ascending: -bot_v[:, 0] is the highest of the bottom k
    bot_i: np.ndarray  # [n, k]
    own: np.ndarray  # [n, m] float32, the tracked tokens' logits
    tracked: np.ndarray  # [n, m] their ids
    above: np.ndarray  # [n, m] int64

    @classmethod
    def start(cls, own: np.ndarray, tracked: np.ndarray, k: int) -> Scan:
        n = own.shape[0]
        return cls(np.full(n, -np.inf, np.float32), np.zeros(n), np.zeros(n),
                   np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64),
                   np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64),
                   np.ascontiguousarray(own, np.float32), np.ascontiguousarray(tracked, np.int64),
                   np.zeros(own.shape, np.int64))

    @classmethod
    def whole(cls, logits: np.ndarray, tracked: np.ndarray, k: int) -> Scan:
        """The scan of whole rows: logits [n, vocab] float32, tracked [n, m] token ids."""
        state = cls.start(np.take_along_axis(logits, tracked, 1), tracked, k)
        state.fold(logits, 0)
        return state

    def fold(self, tile: np.ndarray, start: int, parallel: bool = True) -> None:
        """Read tile [n, T] float32, the logits of tokens start .. start + T - 1 (tiles in increasing order,
        so that ties keep the lower id); rows in parallel, or serially for a caller that runs its own threads."""
        (_fold_parallel if parallel else _fold_serial)(
            tile, start, self.own, self.tracked, self.mx, self.total, self.moment,
            self.top_v, self.top_i, self.bot_v, self.bot_i, self.above)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """log-normaliser [n], entropy [n] (nats), top ids [n, k], top logits [n, k] (highest first), bottom
        ids [n, k] (lowest first), bottom logits [n, k], ranks [n, m] (1 + the number strictly higher)."""
        log_total = np.log(self.total)
        return (self.mx + log_total, log_total - self.moment / self.total, self.top_i[:, ::-1],
                self.top_v[:, ::-1], self.bot_i[:, ::-1], -self.bot_v[:, ::-1], self.above + 1)


def scan(logits: np.ndarray, k: int, tracked: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scan.result() of whole rows: logits [n, vocab] float32, tracked [n, m] token ids."""
    return Scan.whole(logits, tracked, k).result()


# Two drivers of one row routine: numba fixes `parallel` when it compiles, so a caller that runs its own
# threads (LogitLens._factored) needs a build without numba's thread pool.
@njit(parallel=True, cache=True, nogil=True)
def _fold_parallel(tile, start, own, tracked, mx, total, moment, top_v, top_i, bot_v, bot_i, above):  # noqa: ANN001
    for r in prange(tile.shape[0]):
        _fold_row(tile[r], start, own[r], tracked[r], mx, total, moment, top_v[r], top_i[r], bot_v[r], bot_i[r],
                  above[r], r)


@njit(cache=True, nogil=True)
def _fold_serial(tile, start, own, tracked, mx, total, moment, top_v, top_i, bot_v, bot_i, above):  # noqa: ANN001
    for r in range(tile.shape[0]):
        _fold_row(tile[r], start, own[r], tracked[r], mx, total, moment, top_v[r], top_i[r], bot_v[r], bot_i[r],
                  above[r], r)


@njit(cache=True, nogil=True)
def _fold_row(row, start, own, tracked, mx, total, moment, tv, ti, bv, bi, above, r) -> None:  # noqa: ANN001
    """Fold row r's tile into its state (the per-row slices, and entry r of the running mx, total, moment)."""
    T = row.shape[0]
    for s in range(0, T, _BLOCK):
        stop = min(s + _BLOCK, T)
        above_top, below_bottom = _outside(row[s:stop], tv[0], -bv[0])
        if above_top > 0 or ti[0] < 0:
            _keep(row, s, stop, start, np.float32(1.0), tv, ti)
        if below_bottom > 0 or bi[0] < 0:
            _keep(row, s, stop, start, np.float32(-1.0), bv, bi)
    hi = tv[-1]  # the top k hold the highest logit so far
    if hi > mx[r]:  # re-base the sums on the new maximum
        if total[r] > 0:
            shift = float(mx[r]) - float(hi)
            c = np.exp(shift)
            moment[r] = c * (moment[r] + shift * total[r])
            total[r] = c * total[r]
        mx[r] = hi
    t, m = _exp_terms(row, mx[r])
    total[r] += t
    moment[r] += m
    for j in range(own.shape[0]):
        above[j] += _count_above(row, own[j], tracked[j] - start)


@njit(fastmath=_FAST, cache=True, nogil=True)
def _outside(block: np.ndarray, hi: np.float32, lo: np.float32) -> tuple[int, int]:
    """How many logits of the block are above hi, and how many below lo (counts vectorise; a max does not)."""
    above = below = 0
    for j in range(block.shape[0]):
        above += block[j] > hi
        below += block[j] < lo
    return above, below


@njit(cache=True, nogil=True)
def _keep(row: np.ndarray, start: int, stop: int, offset: int, sign: np.float32, vals: np.ndarray,
          ids: np.ndarray) -> None:
    """Insert the tokens of row[start:stop] (ids from offset + start) whose sign·logit beats the current k
    kept (vals ascending, in sign·logit; on a tie the earlier, lower id stays): sign 1 keeps the top k, -1
    the bottom k."""
    k = vals.shape[0]
    low, full = vals[0], ids[0] >= 0  # what a logit must beat, in registers: the stores below may alias it
    for j in range(start, stop):
        x = sign * row[j]
        if x > low or not full:
            p = 0
            while p + 1 < k and (vals[p + 1] < x or ids[p + 1] < 0):
                vals[p] = vals[p + 1]
                ids[p] = ids[p + 1]
                p += 1
            vals[p] = x
            ids[p] = offset + j
            low, full = vals[0], ids[0] >= 0


@njit(fastmath=_FAST, cache=True, nogil=True)
def _count_above(row: np.ndarray, own: np.float32, skip: int) -> int:
    """Logits of row above own, not counting the token at index skip (the tracked token itself, whose own
    logit may come from a separate product and differ from its logit here by rounding)."""
    above = 0
    for j in range(row.shape[0]):
        above += row[j] > own
    if 0 <= skip < row.shape[0] and row[skip] > own:
        above -= 1
    return above
