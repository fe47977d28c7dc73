"""GPT-J: parallel blocks (one ln_1 feeds attention and MLP), rotary on part of each head, GELU MLP."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ingest.adapters import register
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec, separate_weights, split_separate


@register
class GPTJ(Adapter):
    family = "gptj"
    model_types = ("gptj",)

    def spec(self, config: Any) -> ModelSpec:
        return ModelSpec(
            arch=self.family, n_layers=config.n_layer, n_heads=config.n_head, n_kv_heads=config.n_head,
            d_model=config.n_embd, d_head=config.n_embd // config.n_head, d_mlp=config.n_inner or 4 * config.n_embd,
            vocab_size=config.vocab_size, n_ctx=config.n_positions, norm="layernorm", block="parallel",
            act=config.activation_function,
        )

    def blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.transformer.h)

    def points(self, block: nn.Module) -> LayerPoints:
        attn, mlp = block.attn, block.mlp
        # the MLP reads ln_1's output too: ln2 is the same module, so its node equals ln1's
        return LayerPoints(
            block=block, ln1=block.ln_1, qkv=(attn.q_proj, attn.k_proj, attn.v_proj), o_proj=attn.out_proj,
            ln2=block.ln_1, mlp_pre=mlp.fc_in, mlp_down=mlp.fc_out, mlp=mlp,
        )

    def split_qkv(self, outputs: list[torch.Tensor], spec: ModelSpec) -> tuple[torch.Tensor, ...]:
        return split_separate(outputs, spec)

    def weights(self, block: nn.Module, spec: ModelSpec) -> LayerWeights:
        attn, mlp = block.attn, block.mlp
        return separate_weights(attn.q_proj, attn.k_proj, attn.out_proj, mlp.fc_in, mlp.fc_out, spec)

    def final_norm(self, model: nn.Module) -> nn.Module:
        return model.transformer.ln_f
