"""Llama family: RMSNorm, SwiGLU MLP, rotary positions, grouped-query attention."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, zeros_if_none


@register
class Llama(Adapter):
    family = "llama"
    model_types = ("llama",)

    def spec(self, config: Any) -> ModelSpec:
        n_heads = config.num_attention_heads
        d_head = getattr(config, "head_dim", None) or config.hidden_size // n_heads
        return ModelSpec(
            arch=self.family, n_layers=config.num_hidden_layers, n_heads=n_heads,
            n_kv_heads=config.num_key_value_heads or n_heads, d_model=config.hidden_size, d_head=d_head,
            d_mlp=config.intermediate_size, vocab_size=config.vocab_size,
            n_ctx=config.max_position_embeddings, norm="rmsnorm", block="sequential",
            act=f"{config.hidden_act} (gated)",
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
        # pre-rotary projections: what a head reads, independent of position
        q, k, v = outputs
        T = q.shape[0]
        return (q.reshape(T, spec.n_heads, spec.d_head), k.reshape(T, spec.n_kv_heads, spec.d_head),
                v.reshape(T, spec.n_kv_heads, spec.d_head))

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn, mlp = block.self_attn, block.mlp
        d, dh = spec.d_model, spec.d_head

        def per_head(linear: nn.Linear, n: int) -> torch.Tensor:  # weight [n*dh, d] -> [n, d, dh]
            return linear.weight.detach().reshape(n, dh, d).transpose(1, 2)

        return LayerWeights(
            W_Q=per_head(attn.q_proj, spec.n_heads),
            W_K=per_head(attn.k_proj, spec.n_kv_heads),
            W_O=attn.o_proj.weight.detach().T.reshape(spec.n_heads, dh, d),
            b_O=zeros_if_none(attn.o_proj.bias, d),
            W_in=mlp.gate_proj.weight.detach().T,
            W_out=mlp.down_proj.weight.detach().T,
            b_out=zeros_if_none(mlp.down_proj.bias, d),
        )

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.model.norm
