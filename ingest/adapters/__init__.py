"""The registry of architecture adapters, keyed by the Hugging Face `model_type`."""

from __future__ import annotations

from typing import Any

from lensgraph.errors import ModelError
from ingest.adapters.base import Adapter, LayerPoints, LayerWeights, ModelSpec

ADAPTERS: dict[str, Adapter] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    for model_type in cls.model_types:
        ADAPTERS[model_type] = cls()
    return cls


def adapter_for(config: Any) -> Adapter:
    model_type = getattr(config, "model_type", None)
    try:
        return ADAPTERS[model_type]
    except KeyError:
        families = sorted({a.family for a in ADAPTERS.values()})
        raise ModelError(
            f"architecture {model_type!r} is not supported; supported families: {', '.join(families)} "
            f"(model types: {', '.join(sorted(ADAPTERS))}); docs/ADDING_A_MODEL.md shows how to add one."
        ) from None


# Each family registers itself on import; one file per family.
from ingest.adapters import gemma, gpt2, gpt_neo, gpt_neox, gptj, llama, opt  # noqa: E402,F401

__all__ = ["ADAPTERS", "Adapter", "LayerPoints", "LayerWeights", "ModelSpec", "adapter_for", "register"]
