"""GPT-2 family (every size, distilgpt2): LayerNorm, GELU MLP, fused c_attn, Conv1D weights stored [in, out]."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, zeros_if_none


@register
class GPT2(Adapter):
    family = "gpt2"
    model_types = ("gpt2",)

    def spec(self, config: Any) -> ModelSpec:
        d_model, n_heads = config.n_embd, config.n_head
        return ModelSpec(
            arch=self.family, n_layers=config.n_layer, n_heads=n_heads, n_kv_heads=n_heads,
            d_model=d_model, d_head=d_model // n_heads, d_mlp=config.n_inner or 4 * d_model,
            vocab_size=config.vocab_size, n_ctx=config.n_positions, norm="layernorm",
            block="sequential", act=config.activation_function,
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.transformer.h)

    def points(self, block: nn.Module) -> LayerPoints:
        return LayerPoints(
            block=block, ln1=block.ln_1, qkv=(block.attn.c_attn,), o_proj=block.attn.c_proj,
            ln2=block.ln_2, mlp_pre=block.mlp.c_fc, mlp_down=block.mlp.c_proj, mlp=block.mlp,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        (fused,) = outputs  # [T, 3*d_model]
        return tuple(x.reshape(x.shape[0], spec.n_heads, spec.d_head) for x in fused.split(spec.d_model, -1))

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        H, dh, d = spec.n_heads, spec.d_head, spec.d_model
        W_qkv = block.attn.c_attn.weight.detach()  # [d_model, 3*d_model]

        def per_head(W: torch.Tensor) -> torch.Tensor:  # [d_model, H*dh] -> [H, d_model, dh]
            return W.reshape(d, H, dh).permute(1, 0, 2)

        return LayerWeights(
            W_Q=per_head(W_qkv[:, :d]),
            W_K=per_head(W_qkv[:, d:2 * d]),
            W_O=block.attn.c_proj.weight.detach().reshape(H, dh, d),
            b_O=zeros_if_none(block.attn.c_proj.bias, d),
            W_in=block.mlp.c_fc.weight.detach(),
            W_out=block.mlp.c_proj.weight.detach(),
            b_out=zeros_if_none(block.mlp.c_proj.bias, d),
        )

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.transformer.ln_f
