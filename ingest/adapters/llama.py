"""Llama family: RMSNorm, SwiGLU MLP, rotary positions, grouped-query attention.

Mistral (sliding-window attention) and Qwen2 (q/k/v biases) share Llama's modules and read the same way;
the attention probabilities come from the model itself, so windows and biases need nothing here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, separate_weights, split_separate


@register
class Llama(Adapter):
    family = "llama"
    model_types = ("llama", "mistral", "qwen2")

    def spec(self, config: Any) -> ModelSpec:
        n_heads = config.num_attention_heads
        return ModelSpec(
            arch=self.family, n_layers=config.num_hidden_layers, n_heads=n_heads,
            n_kv_heads=config.num_key_value_heads or n_heads, d_model=config.hidden_size,
            d_head=getattr(config, "head_dim", None) or config.hidden_size // n_heads,
            d_mlp=config.intermediate_size, vocab_size=config.vocab_size,
            n_ctx=config.max_position_embeddings, norm="rmsnorm", block="sequential",
            act=f"{getattr(config, 'hidden_act', None) or getattr(config, 'hidden_activation', '?')} (gated)",
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.model.layers)

    def points(self, block: nn.Module) -> LayerPoints:
        attn, mlp = block.self_attn, block.mlp
        return LayerPoints(
            block=block, ln1=block.input_layernorm, qkv=(attn.q_proj, attn.k_proj, attn.v_proj),
            o_proj=attn.o_proj, ln2=block.post_attention_layernorm, mlp_pre=mlp.gate_proj,
            mlp_down=mlp.down_proj, mlp=mlp,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        return split_separate(outputs, spec)  # pre-rotary: what a head reads, independent of position

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn, mlp = block.self_attn, block.mlp
        return separate_weights(attn.q_proj, attn.k_proj, attn.o_proj, mlp.gate_proj, mlp.down_proj, spec)

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.model.norm
