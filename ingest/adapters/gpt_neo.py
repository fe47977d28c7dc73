"""GPT-Neo: GPT-2's block with separate q/k/v projections (no bias) and alternating local attention."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, separate_weights, split_separate


@register
class GPTNeo(Adapter):
    family = "gpt_neo"
    model_types = ("gpt_neo",)

    def spec(self, config: Any) -> ModelSpec:
        d_model, n_heads = config.hidden_size, config.num_heads
        return ModelSpec(
            arch=self.family, n_layers=config.num_layers, n_heads=n_heads, n_kv_heads=n_heads, d_model=d_model,
            d_head=d_model // n_heads, d_mlp=config.intermediate_size or 4 * d_model,
            vocab_size=config.vocab_size, n_ctx=config.max_position_embeddings, norm="layernorm",
            block="sequential", act=config.activation_function,
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.transformer.h)

    def points(self, block: nn.Module) -> LayerPoints:
        attn = block.attn.attention
        return LayerPoints(
            block=block, ln1=block.ln_1, qkv=(attn.q_proj, attn.k_proj, attn.v_proj), o_proj=attn.out_proj,
            ln2=block.ln_2, mlp_pre=block.mlp.c_fc, mlp_down=block.mlp.c_proj, mlp=block.mlp,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        return split_separate(outputs, spec)

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn = block.attn.attention
        return separate_weights(attn.q_proj, attn.k_proj, attn.out_proj, block.mlp.c_fc, block.mlp.c_proj, spec)

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.transformer.ln_f
