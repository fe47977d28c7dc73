"""Gemma 2 and 3: Llama's modules plus a norm before and after each sub-block, scaled embeddings,
(1 + w) RMSNorm gains, per-head q/k norms (Gemma 3) and final-logit soft-capping (Gemma 2).

The extra norms map onto the graph as: ln2 = pre_feedforward_layernorm; attn_out and mlp_out are the
post-norm outputs, which is what the residual stream receives; concat → attn_out is a `norm` edge.
Query and key nodes read the projections before q_norm/k_norm and rotary (position-free directions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from ingest.adapters import register
from ingest.adapters.base import LayerPoints, ModelSpec
from ingest.adapters.llama import Llama


@register
class Gemma(Llama):
    family = "gemma"
    model_types = ("gemma2", "gemma3_text")

    def spec(self, config: Any) -> ModelSpec:
        return replace(super().spec(config), arch=self.family, act=f"{config.hidden_activation} (gated)",
                       post_norms=True, logit_softcap=getattr(config, "final_logit_softcapping", None))

    def points(self, block: nn.Module) -> LayerPoints:
        return replace(super().points(block), ln2=block.pre_feedforward_layernorm,
                       post_attn_norm=block.post_attention_layernorm,
                       post_mlp_norm=block.post_feedforward_layernorm)
