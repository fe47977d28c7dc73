"""The logit lens: any residual-space vector read through the model's final norm and unembedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

CHUNK_ELEMENTS = 2**25  # logits per chunk (128 MB of fp32): bounds memory for any vocabulary size


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


class LogitLens:
    def __init__(self, final_norm: nn.Module, W_U: torch.Tensor, b_U: torch.Tensor | None,
                 softcap: float | None = None) -> None:
        self.final_norm = final_norm
        self.W_U = W_U.contiguous()  # [d_model, vocab]
        self.b_U = b_U
        self.softcap = softcap
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

    def stats(self, X: torch.Tensor, k: int, tracked: dict[str, int] | None = None) -> LensStats:
        """Annotate every row of X [N, d_model], `chunk` rows per matmul."""
        return self.signed_stats(X, k, tracked, negated=False)[0]

    def signed_stats(self, X: torch.Tensor, k: int, tracked: dict[str, int] | None = None,
                     negated: bool = True) -> list[LensStats]:
        """Stats of X and, when `negated`, of -X too, from the same matmul (see `offset`)."""
        tracked = tracked or {}
        c = self.offset() if negated else None
        parts: list[list[LensStats]] = [[], []]
        for start in range(0, X.shape[0], self.chunk):
            affine = self._affine(X[start:start + self.chunk])
            parts[0].append(_stats(self._cap(affine), k, tracked))
            if c is not None:
                parts[1].append(_stats(self._cap(2 * c - affine), k, tracked))
        norm = X.norm(dim=-1).double().numpy()
        return [_concat(p, norm, k, tracked) for p in parts[: 2 if negated else 1]]


def _concat(parts: list[LensStats], norm: np.ndarray, k: int, tracked: dict[str, int]) -> LensStats:
    if not parts:
        ids, probs = np.zeros((0, k), np.int64), np.zeros((0, k))
        return LensStats(norm, np.zeros(0), ids, probs, ids, probs,
                         {n: np.zeros(0, np.int64) for n in tracked}, {n: np.zeros(0) for n in tracked})
    cat = np.concatenate
    return LensStats(
        norm, cat([p.entropy for p in parts]),
        cat([p.top_ids for p in parts]), cat([p.top_probs for p in parts]),
        cat([p.bottom_ids for p in parts]), cat([p.bottom_probs for p in parts]),
        {n: cat([p.ranks[n] for p in parts]) for n in tracked},
        {n: cat([p.probs[n] for p in parts]) for n in tracked},
    )


def _stats(logits: torch.Tensor, k: int, tracked: dict[str, int]) -> LensStats:
    """logits [n, vocab] -> annotations. One softmax pass; entropy = logsumexp - E_p[logit]."""
    probs = torch.softmax(logits, dim=-1)
    top_l, top_i = logits.topk(k, dim=-1)
    _, bot_i = logits.topk(k, dim=-1, largest=False)
    top_p = probs.gather(-1, top_i)
    lse = top_l[:, 0] - top_p[:, 0].log()  # from the most probable token, where p is never 0
    entropy = lse - torch.einsum("nv,nv->n", probs, logits)
    ranks, tprobs = {}, {}
    for name, token in tracked.items():
        # a float sum of the comparison is ~2x faster than an integer one, and exact below 2**24
        ranks[name] = ((logits > logits[:, token : token + 1]).float().sum(-1) + 1).long().numpy()
        tprobs[name] = probs[:, token].double().numpy()
    return LensStats(np.zeros(0), entropy.double().numpy(), top_i.numpy(), top_p.double().numpy(),
                     bot_i.numpy(), probs.gather(-1, bot_i).double().numpy(), ranks, tprobs)
