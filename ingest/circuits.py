"""A model's circuits M[h] = A[h] C diag(g) W_U (ingest/lens.py, Factored), kept on disk once built.

A circuit depends on the weights alone, like a static neuron's annotation, yet building the 90 of SmolLM2
(W_O and W_Q of 30 layers, W_K of their key/value heads) was 40 % of a batch's projection FLOPs. Read back,
one takes ~20 ms instead of ~0.5 s of a core. They are read one at a time, while a batch is projected, so
they cost memory only while in use; the files (7.4 GiB for SmolLM2) stay in the cache directory, bounded by
`config.circuit_budget()`, and the operating system's page cache keeps the hot ones in memory.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

CIRCUIT_VERSION = 1  # bump when what a file holds changes


class CircuitCache:
    """Circuits of one model's weights: [H, d_head, vocab] float32 arrays, one .npy file per key (layer, name).
    A budget of 0 bytes keeps nothing (every circuit is built when used)."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        self.directory = directory
        self.budget = budget_bytes
        self._lock = threading.Lock()  # circuits are built on several threads at once
        self._used: int | None = None  # bytes on disk, counted on the first put

    def _path(self, key: tuple) -> Path:
        return self.directory / ("-".join(str(part) for part in key) + ".npy")

    def has(self, key: tuple) -> bool:
        return self.budget > 0 and self._path(key).exists()

    def get(self, key: tuple, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The circuit, or None if it is not cached (or its file is unreadable or of another shape: then it is
        removed, to be built and put again)."""
        if not self.has(key):
            return None
        path = self._path(key)
        try:
            M = np.load(path)
        except (OSError, ValueError):
            M = None
        if M is None or M.shape != shape or M.dtype != np.float32:
            path.unlink(missing_ok=True)
            return None
        return torch.from_numpy(M)

    def put(self, key: tuple, M: torch.Tensor) -> None:
        """Keep M if the budget allows; written to a temporary file and renamed, so a reader never sees half of
        one. A disk that is full or read-only only means the circuit is built again next time."""
        size = M.numel() * M.element_size() + 128  # the .npy header
        with self._lock:
            if self._used is None:
                self._used = sum(p.stat().st_size for p in self.directory.glob("*.npy")) \
                    if self.directory.is_dir() else 0
            if self.budget <= 0 or self._used + size > self.budget or self._path(key).exists():
                return
            self._used += size
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".circuit-", suffix=".npy")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, M.contiguous().numpy())
                os.replace(tmp, self._path(key))
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError:
            with self._lock:
                self._used -= size
