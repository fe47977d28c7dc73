"""Defaults and the places lensgraph keeps files; each can be overridden by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

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
    """Converted model weights and static neuron annotations: $LENSGRAPH_CACHE or ~/.cache/lensgraph."""
    root = os.environ.get("LENSGRAPH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lensgraph"
    )
    return Path(root)
