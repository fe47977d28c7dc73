"""Capture one forward pass with hooks: every vector the graph needs, read from the real modules."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from ingest.loading import LoadedModel


@dataclass
class LayerCapture:
    """One block of one pass. T = analysed position + 1 (the pass runs on the prompt up to it)."""

    resid_pre: torch.Tensor  # [T, d_model]
    ln1: torch.Tensor  # [T, d_model]
    q: torch.Tensor  # [T, n_heads, d_head], before rotary
    k: torch.Tensor  # [T, n_kv_heads, d_head], before rotary
    v: torch.Tensor  # [T, n_kv_heads, d_head]
    attn: torch.Tensor  # [n_heads, T]: the analysed position's attention over source positions
    concat: torch.Tensor  # [T, n_heads*d_head]: the heads' outputs before W_O
    attn_sum: torch.Tensor  # [T, d_model]: concat @ W_O + b_O, the output projection's own output
    attn_out: torch.Tensor  # [T, d_model]: what attention adds to the residual (attn_sum, or its post-norm)
    ln2: torch.Tensor  # [T, d_model]
    pre: torch.Tensor  # [T, d_mlp]: neuron pre-activations (the gate for gated MLPs)
    coef: torch.Tensor  # [T, d_mlp]: neuron coefficients, the input of the down projection
    mlp_sum: torch.Tensor  # [T, d_model]: coef @ W_out + b_out, the down projection's own output
    mlp_out: torch.Tensor  # [T, d_model]: what the MLP adds to the residual (mlp_sum, or its post-norm)
    resid_post: torch.Tensor  # [T, d_model]

    @property
    def resid_mid(self) -> torch.Tensor:
        """resid_pre + attn_out; the MLP's input residual in sequential blocks."""
        return self.resid_pre + self.attn_out


@dataclass
class Capture:
    token_ids: list[int]  # the tokens the pass ran on (the prompt up to the analysed position)
    layers: list[LayerCapture]
    logits: torch.Tensor  # [vocab]: the model's own output at the analysed position


def _rows(x: Any) -> torch.Tensor:
    """A module's (first) output or input as [T, features]: batch 1, whether or not it is flattened (OPT)."""
    x = x[0] if isinstance(x, (tuple, list)) else x
    return x.detach().reshape(-1, x.shape[-1])


@contextmanager
def _hooks(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def capture(loaded: LoadedModel, token_ids: list[int]) -> Capture:
    """Run the model once on `token_ids` (the analysed position is the last) and read every layer."""
    adapter, spec = loaded.adapter, loaded.spec
    seen: dict[tuple[int, str], Any] = {}
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def out(layer: int, name: str, module: nn.Module) -> None:
        def hook(_m: nn.Module, _inp: Any, output: Any) -> None:
            seen[layer, name] = _rows(output)

        handles.append(module.register_forward_hook(hook))

    def inp(layer: int, name: str, module: nn.Module) -> None:
        def hook(_m: nn.Module, args: tuple, kwargs: dict) -> None:
            seen[layer, name] = _rows(args[0] if args else kwargs["hidden_states"])

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    with _hooks(handles):
        for i, block in enumerate(adapter.blocks(loaded.model)):
            p = adapter.points(block)
            inp(i, "resid_pre", p.block)
            out(i, "resid_post", p.block)
            out(i, "ln1", p.ln1)
            for j, module in enumerate(p.qkv):
                out(i, f"qkv{j}", module)
            inp(i, "concat", p.o_proj)
            out(i, "attn_sum", p.o_proj)
            out(i, "attn_out", p.o_proj if p.post_attn_norm is None else p.post_attn_norm)
            out(i, "ln2", p.ln2)
            out(i, "pre", p.mlp_pre)
            inp(i, "coef", p.mlp_down)
            out(i, "mlp_sum", p.mlp_down)
            out(i, "mlp_out", p.mlp if p.post_mlp_norm is None else p.post_mlp_norm)
        ids = torch.tensor([token_ids])
        result = loaded.model(input_ids=ids, output_attentions=True, use_cache=False)

    layers = []
    for i in range(spec.n_layers):
        n_qkv = sum(1 for key in seen if key[0] == i and key[1].startswith("qkv"))
        q, k, v = adapter.split_qkv([seen[i, f"qkv{j}"] for j in range(n_qkv)], spec)
        layers.append(LayerCapture(
            resid_pre=seen[i, "resid_pre"], ln1=seen[i, "ln1"], q=q, k=k, v=v,
            attn=result.attentions[i][0, :, -1, :].detach(), concat=seen[i, "concat"],
            attn_sum=seen[i, "attn_sum"], attn_out=seen[i, "attn_out"], ln2=seen[i, "ln2"], pre=seen[i, "pre"],
            coef=seen[i, "coef"], mlp_sum=seen[i, "mlp_sum"], mlp_out=seen[i, "mlp_out"],
            resid_post=seen[i, "resid_post"],
        ))
    return Capture(list(token_ids), layers, result.logits[0, -1].detach())
