"""OPT: pre-LayerNorm blocks with biases and ReLU; the MLP is fc1/fc2 directly on the block.

OPT-350m (post-LayerNorm, projected embeddings) has no residual stream in the graph's sense and is refused.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, separate_weights, split_separate
from lensgraph.errors import ModelError


@register
class OPT(Adapter):
    family = "opt"
    model_types = ("opt",)

    def spec(self, config: Any) -> ModelSpec:
        if not config.do_layer_norm_before or config.word_embed_proj_dim != config.hidden_size:
            raise ModelError("OPT with post-LayerNorm blocks (OPT-350m) is not supported: its residual stream "
                             "is normalised after every block; other OPT sizes are")
        n_heads = config.num_attention_heads
        return ModelSpec(
            arch=self.family, n_layers=config.num_hidden_layers, n_heads=n_heads, n_kv_heads=n_heads,
            d_model=config.hidden_size, d_head=config.hidden_size // n_heads, d_mlp=config.ffn_dim,
            vocab_size=config.vocab_size, n_ctx=config.max_position_embeddings, norm="layernorm",
            block="sequential", act=config.activation_function,
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.model.decoder.layers)

    def points(self, block: nn.Module) -> LayerPoints:
        attn = block.self_attn
        return LayerPoints(
            block=block, ln1=block.self_attn_layer_norm, qkv=(attn.q_proj, attn.k_proj, attn.v_proj),
            o_proj=attn.out_proj, ln2=block.final_layer_norm, mlp_pre=block.fc1, mlp_down=block.fc2, mlp=block.fc2,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        return split_separate(outputs, spec)

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn = block.self_attn
        return separate_weights(attn.q_proj, attn.k_proj, attn.out_proj, block.fc1, block.fc2, spec)

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.model.decoder.final_layer_norm
