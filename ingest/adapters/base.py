"""What an architecture adapter maps a Hugging Face model onto: one vocabulary for every family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    arch: str  # the adapter's family name
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    vocab_size: int
    n_ctx: int  # the longest prompt the model takes
    norm: str  # 'layernorm' | 'rmsnorm'
    block: str  # 'sequential' | 'parallel' (attention and MLP both read resid_pre)
    act: str  # e.g. 'gelu_new', 'silu (gated)'
    post_norms: bool = False  # attention and MLP outputs pass a norm before the residual (Gemma)
    logit_softcap: float | None = None  # final logits = cap * tanh(logits / cap) (Gemma 2)

    @property
    def group(self) -> int:
        """Query heads per key/value head (grouped-query attention)."""
        return self.n_heads // self.n_kv_heads


@dataclass
class LayerWeights:
    """A layer's weights in one convention: vectors are rows, `x @ W` maps them."""

    W_Q: torch.Tensor  # [n_heads, d_model, d_head]
    W_K: torch.Tensor  # [n_kv_heads, d_model, d_head]
    W_O: torch.Tensor  # [n_heads, d_head, d_model]
    b_O: torch.Tensor  # [d_model]
    W_in: torch.Tensor  # [d_model, d_mlp]; the gate for gated MLPs
    W_out: torch.Tensor  # [d_mlp, d_model]
    b_out: torch.Tensor  # [d_model]


@dataclass(frozen=True)
class LayerPoints:
    """The modules of one block whose inputs or outputs the capture hooks read."""

    block: nn.Module  # input: resid_pre; output: resid_post
    ln1: nn.Module  # output: ln1
    qkv: tuple[nn.Module, ...]  # outputs: split by Adapter.split_qkv
    o_proj: nn.Module  # input: concat [T, n_heads*d_head]; output: sum of heads through W_O, + b_O
    ln2: nn.Module  # output: ln2 (may be ln1's module, as in GPT-J)
    mlp_pre: nn.Module  # output: neuron pre-activations [T, d_mlp]
    mlp_down: nn.Module  # input: neuron coefficients [T, d_mlp]; output: sum of neurons, + b_out
    mlp: nn.Module  # output: mlp_out, unless post_mlp_norm
    post_attn_norm: nn.Module | None = None  # output: attn_out (Gemma); else attn_out is o_proj's output
    post_mlp_norm: nn.Module | None = None  # output: mlp_out (Gemma)


class Adapter:
    """One architecture family. Subclasses are pure mappings: no state, no side effects."""

    family: str = ""
    model_types: tuple[str, ...] = ()

    def spec(self, config: Any) -> ModelSpec:
        raise NotImplementedError

    def blocks(self, model: nn.Module) -> Sequence[nn.Module]:
        raise NotImplementedError

    def points(self, block: nn.Module) -> LayerPoints:
        raise NotImplementedError

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        """The qkv modules' outputs ([T, *] each) as q [T, n_heads, d_head], k and v [T, n_kv_heads, d_head]."""
        raise NotImplementedError

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        raise NotImplementedError

    def final_norm(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

    def unembed(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """W_U [d_model, vocab] and its bias or None; every family so far has an `lm_head` Linear."""
        head = model.lm_head
        return head.weight.detach().T, None if head.bias is None else head.bias.detach()


def zeros_if_none(bias: torch.Tensor | None, size: int) -> torch.Tensor:
    return torch.zeros(size) if bias is None else bias.detach()


# --- helpers for the common layout: separate nn.Linear projections, weight [out, in] --------------------

def heads_in(linear: nn.Linear, n: int, d_head: int) -> torch.Tensor:
    """A q/k/v projection's weight [n*d_head, d_model] as per-head maps [n, d_model, d_head]."""
    W = linear.weight.detach()
    return W.reshape(n, d_head, W.shape[1]).transpose(1, 2)


def heads_out(linear: nn.Linear, n: int, d_head: int) -> torch.Tensor:
    """An output projection's weight [d_model, n*d_head] as per-head maps [n, d_head, d_model]."""
    return linear.weight.detach().T.reshape(n, d_head, -1)


def split_separate(outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
    """Outputs of separate q, k, v projections as [T, heads, d_head] each."""
    q, k, v = outputs
    T = q.shape[0]
    return (q.reshape(T, spec.n_heads, spec.d_head), k.reshape(T, spec.n_kv_heads, spec.d_head),
            v.reshape(T, spec.n_kv_heads, spec.d_head))


def separate_weights(q: nn.Linear, k: nn.Linear, o: nn.Linear, w_in: nn.Linear, w_out: nn.Linear,
                     spec: ModelSpec) -> LayerWeights:
    """LayerWeights of a block with separate q/k/v/o and MLP projections, all nn.Linear."""
    return LayerWeights(
        W_Q=heads_in(q, spec.n_heads, spec.d_head),
        W_K=heads_in(k, spec.n_kv_heads, spec.d_head),
        W_O=heads_out(o, spec.n_heads, spec.d_head),
        b_O=zeros_if_none(o.bias, spec.d_model),
        W_in=w_in.weight.detach().T,
        W_out=w_out.weight.detach().T,
        b_out=zeros_if_none(w_out.bias, spec.d_model),
    )
