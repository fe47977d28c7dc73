"""Static nodes of a model: its vocabulary and every neuron's logit-lens annotation, computed once.

A neuron writes `coef * w` into the residual; through the final norm only the sign of coef matters, so
each output direction is read twice (positive and negative activation) from one matmul (LogitLens.offset).
Results are cached as Parquet under the cache directory and reused by every store and process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ingest.adapters import LayerWeights
from ingest.lens import LensStats, LogitLens
from ingest.loading import LoadedModel, weights_fingerprint
from lensgraph import config, schema
from lensgraph.records import ModelGraph

STATIC_VERSION = 1  # bump when the static annotation changes


def token_texts(loaded: LoadedModel) -> np.ndarray:
    """[vocab] object array: each token id decoded on its own (ids past the tokenizer: '<id N>')."""
    n = min(len(loaded.tokenizer), loaded.spec.vocab_size)
    texts = loaded.tokenizer.batch_decode([[i] for i in range(n)])
    texts += [f"<id {i}>" for i in range(n, loaded.spec.vocab_size)]
    return np.array(texts, dtype=object)


def list_column(values: np.ndarray) -> pa.Array:
    """A 2-D array [N, k] as an Arrow list column, without a Python loop over rows."""
    n, k = values.shape
    flat = values.ravel()
    child = pa.array(flat.tolist() if flat.dtype == object else flat, pa.string() if flat.dtype == object else None)
    offsets = np.arange(n + 1, dtype=np.int32) * k
    return pa.ListArray.from_arrays(pa.array(offsets), child)


def lens_columns(stats: LensStats, texts: np.ndarray, prefix: str = "") -> dict[str, pa.Array]:
    return {
        f"{prefix}top_tokens": list_column(texts[stats.top_ids]),
        f"{prefix}top_probs": list_column(stats.top_probs),
        f"{prefix}bottom_tokens": list_column(texts[stats.bottom_ids]),
        f"{prefix}bottom_probs": list_column(stats.bottom_probs),
    }


def _neuron_table(loaded: LoadedModel, layer: int, kind: str, out_dirs: torch.Tensor,
                  in_dirs: torch.Tensor | None, lens: LogitLens, texts: np.ndarray, k: int) -> pa.Table:
    n = out_dirs.shape[0]
    pos, neg = lens.signed_stats(out_dirs, k)
    empty = np.full((n, 0), "", dtype=object), np.zeros((n, 0))
    cols: dict[str, pa.Array | np.ndarray | list] = {
        "uid": [schema.neuron_uid(loaded.name, layer, kind, i) for i in range(n)],
        "model": [loaded.name] * n,
        "layer": np.full(n, layer, np.int64),
        "kind": [kind] * n,
        "idx": np.arange(n, dtype=np.int64),
        "norm": pos.norm,
        "entropy": pos.entropy,
        **lens_columns(pos, texts),
        "neg_entropy": neg.entropy,
        "neg_top_tokens": list_column(texts[neg.top_ids]),
        "neg_top_probs": list_column(neg.top_probs),
    }
    if in_dirs is not None:
        inp = lens.stats(in_dirs, k)
        cols["in_norm"] = inp.norm
        cols.update(lens_columns(inp, texts, "in_"))
    else:
        cols["in_norm"] = np.full(n, np.nan)
        cols.update({f"in_{c}": list_column(a) for c, a in
                     (("top_tokens", empty[0]), ("top_probs", empty[1]),
                      ("bottom_tokens", empty[0]), ("bottom_probs", empty[1]))})
    return pa.table(cols, schema=schema.arrow_schema("Neuron"))


def model_row(loaded: LoadedModel) -> dict:
    s = loaded.spec
    return {
        "name": loaded.name, "arch": s.arch, "n_layers": s.n_layers, "n_heads": s.n_heads,
        "n_kv_heads": s.n_kv_heads, "d_model": s.d_model, "d_head": s.d_head, "d_mlp": s.d_mlp,
        "vocab_size": s.vocab_size, "n_ctx": s.n_ctx, "norm": s.norm, "block": s.block, "act": s.act,
        "source": loaded.source, "revision": loaded.revision,
    }


def static_graph(loaded: LoadedModel, weights: list[LayerWeights], lens: LogitLens, texts: np.ndarray,
                 k: int = config.TOP_K, progress: Callable[[int, int], None] = lambda i, n: None) -> ModelGraph:
    """The model's static nodes, from the disk cache or computed now (and cached)."""
    cache = config.cache_dir() / "static" / f"{schema.model_key(loaded.name)}-{weights_fingerprint(loaded)}-k{k}-v{STATIC_VERSION}"
    if (cache / "neurons.parquet").exists():
        return ModelGraph(model_row(loaded), pq.read_table(cache / "tokens.parquet"),  # as the schema now types them
                          pq.read_table(cache / "neurons.parquet").cast(schema.arrow_schema("Neuron")))
    V = loaded.spec.vocab_size
    tokens = pa.table({
        "uid": [schema.token_uid(loaded.name, i) for i in range(V)], "model": [loaded.name] * V,
        "id": np.arange(V, dtype=np.int64), "text": texts.tolist(),
    }, schema=schema.arrow_schema("Token"))
    parts = []
    for layer, w in enumerate(weights):
        parts.append(_neuron_table(loaded, layer, "mlp", w.W_out, w.W_in.T, lens, texts, k))
        parts.append(_neuron_table(loaded, layer, "attn_o", w.W_O.flatten(0, 1), None, lens, texts, k))
        progress(layer + 1, len(weights))
    neurons = pa.concat_tables(parts)
    _save(cache, tokens, neurons)
    return ModelGraph(model_row(loaded), tokens, neurons)


def _save(cache: Path, tokens: pa.Table, neurons: pa.Table) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".static-"))
    try:
        pq.write_table(tokens, staging / "tokens.parquet")
        pq.write_table(neurons, staging / "neurons.parquet")
        if not cache.exists():
            os.replace(staging, cache)  # atomic: never a half-written cache
    finally:
        shutil.rmtree(staging, ignore_errors=True)
