"""Defaults and the places lensgraph keeps files; each can be overridden by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from lensgraph.errors import InputError

DEFAULT_STORE = "lensgraph.lbug"  # the embedded store, in the working directory
TOP_K = 10  # top and bottom tokens kept on every node
PROMOTES_K = 5  # PROMOTES edges written from every node to its top tokens
# passes a worker annotates together: their heads' circuits are factored once for all of them
# (docs/PERFORMANCE.md); larger batches amortise that further but hold more passes in memory
BATCH = int(os.environ.get("LENSGRAPH_BATCH", "64"))


def store_path() -> str:
    """The store used when --store is not given: $LENSGRAPH_STORE, else ./lensgraph.lbug."""
    return os.environ.get("LENSGRAPH_STORE", DEFAULT_STORE)


def cache_dir() -> Path:
    """Converted model weights, static neuron annotations and circuits: $LENSGRAPH_CACHE or ~/.cache/lensgraph."""
    root = os.environ.get("LENSGRAPH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lensgraph"
    )
    return Path(root)


def circuit_budget() -> int:
    """Bytes of circuits (ingest/circuits.py) kept on disk per model: $LENSGRAPH_CIRCUIT_CACHE_GB gibibytes,
    8 by default (SmolLM2-135M's take 7.4, GPT-2 small's 5.5); 0 keeps none and builds each in every batch."""
    raw = os.environ.get("LENSGRAPH_CIRCUIT_CACHE_GB", "8")
    try:
        return int(float(raw) * 2**30)
    except ValueError:
        raise InputError(f"LENSGRAPH_CIRCUIT_CACHE_GB={raw!r}: give a number of gibibytes (0 keeps none)") from None
