"""GPT-NeoX / Pythia: parallel blocks (unless use_parallel_residual is off), a fused query_key_value
laid out per head as [q | k | v], and rotary on part of each head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, heads_out, zeros_if_none


@register
class GPTNeoX(Adapter):
    family = "gpt_neox"
    model_types = ("gpt_neox",)

    def spec(self, config: Any) -> ModelSpec:
        n_heads = config.num_attention_heads
        return ModelSpec(
            arch=self.family, n_layers=config.num_hidden_layers, n_heads=n_heads, n_kv_heads=n_heads,
            d_model=config.hidden_size, d_head=config.hidden_size // n_heads, d_mlp=config.intermediate_size,
            vocab_size=config.vocab_size, n_ctx=config.max_position_embeddings, norm="layernorm",
            block="parallel" if config.use_parallel_residual else "sequential", act=config.hidden_act,
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.gpt_neox.layers)

    def points(self, block: nn.Module) -> LayerPoints:
        attn, mlp = block.attention, block.mlp
        return LayerPoints(
            block=block, ln1=block.input_layernorm, qkv=(attn.query_key_value,), o_proj=attn.dense,
            ln2=block.post_attention_layernorm, mlp_pre=mlp.dense_h_to_4h, mlp_down=mlp.dense_4h_to_h, mlp=mlp,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        (fused,) = outputs  # [T, H * 3 * d_head], per head [q | k | v]
        q, k, v = fused.reshape(fused.shape[0], spec.n_heads, 3, spec.d_head).unbind(2)
        return q, k, v

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn, mlp = block.attention, block.mlp
        H, dh, d = spec.n_heads, spec.d_head, spec.d_model
        W = attn.query_key_value.weight.detach().reshape(H, 3, dh, d)  # rows per head: q, k, v
        return LayerWeights(
            W_Q=W[:, 0].transpose(1, 2), W_K=W[:, 1].transpose(1, 2),
            W_O=heads_out(attn.dense, H, dh), b_O=zeros_if_none(attn.dense.bias, d),
            W_in=mlp.dense_h_to_4h.weight.detach().T, W_out=mlp.dense_4h_to_h.weight.detach().T,
            b_out=zeros_if_none(mlp.dense_4h_to_h.bias, d),
        )

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.gpt_neox.final_layer_norm
