"""Circuits kept on disk (ingest/circuits.py): read back as built, bounded by their budget, and used by the lens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ingest import lens as lens_module
from ingest.circuits import CircuitCache
from ingest.graph import annotate
from ingest.lens import Factored, LogitLens
from ingest.pipeline import Ingestor
from tests.conftest import FRANCE, IOI, JAPAN
from tests.test_batch import _layouts, _vectors
from tests.test_lens import _assert_same_annotations

KEY = (0, "W_O")


def test_a_circuit_is_read_back_as_it_was_written(tmp_path: Path) -> None:
    cache = CircuitCache(tmp_path / "circuits", 2**30)
    M = torch.randn(3, 4, 50)
    assert cache.get(KEY, (3, 4, 50)) is None
    cache.put(KEY, M)
    assert cache.has(KEY)
    assert torch.equal(cache.get(KEY, (3, 4, 50)), M)
    assert [p.name for p in (tmp_path / "circuits").iterdir()] == ["0-W_O.npy"]  # no temporary file left


def test_the_budget_bounds_what_is_kept(tmp_path: Path) -> None:
    M = torch.randn(2, 4, 100)  # 3,200 bytes and a header
    cache = CircuitCache(tmp_path, 5_000)
    cache.put((0, "W_O"), M)
    cache.put((1, "W_O"), M)
    assert cache.has((0, "W_O")) and not cache.has((1, "W_O"))
    other = CircuitCache(tmp_path, 5_000)  # another process counts what is on disk already
    other.put((2, "W_O"), M)
    assert not other.has((2, "W_O"))
    off = CircuitCache(tmp_path / "off", 0)
    off.put(KEY, M)
    assert not off.has(KEY) and off.get(KEY, (2, 4, 100)) is None and not (tmp_path / "off").exists()


def test_an_unreadable_or_mismatched_circuit_is_dropped(tmp_path: Path) -> None:
    cache = CircuitCache(tmp_path, 2**30)
    cache.put(KEY, torch.randn(2, 4, 10))
    assert cache.get(KEY, (2, 4, 11)) is None  # of another shape than the model's
    assert not cache.has(KEY)
    (tmp_path / "0-W_O.npy").write_bytes(b"half a file")
    assert cache.get(KEY, (2, 4, 10)) is None
    assert not cache.has(KEY)


def test_a_cached_circuit_is_factored_for_any_number_of_rows(tmp_path: Path) -> None:
    """The first projection that pays for a circuit builds and keeps it; from then on a block of a few rows,
    which would not pay for building it, is read through it, with the annotations of the direct projection."""
    torch.manual_seed(5)
    d, d_head, H, vocab = 64, 16, 4, 1000
    norm = torch.nn.RMSNorm(d)
    with torch.no_grad():
        norm.weight.normal_()
    W_U = torch.randn(d, vocab)
    cache = CircuitCache(tmp_path, 2**30)
    lens, plain = LogitLens(norm, W_U, None, circuits=cache), LogitLens(norm, W_U, None)
    A = torch.randn(H, d_head, d)

    def block(R: int) -> tuple[torch.Tensor, Factored]:
        U = torch.randn(H, R, d_head)
        return torch.bmm(U, A).reshape(H * R, d), Factored(KEY, A, U, np.arange(H * R))

    with torch.no_grad():
        X, many = block(200)
        built = lens.stats(X[:0], 5, {}, [many])
        assert cache.has(KEY)
        assert torch.equal(cache.get(KEY, (H, d_head, vocab)), lens.circuit(A))
        read = lens.stats(X[:0], 5, {}, [many])  # through the circuit read back: the same numbers
        for name in ("norm", "entropy", "top_ids", "top_probs", "bottom_ids", "bottom_probs"):
            np.testing.assert_array_equal(getattr(read, name), getattr(built, name))

        X, few = block(8)
        assert not plain._worth_factoring([few]) and lens._worth_factoring([few])
        assert lens.flops(0, [few]) == plain.flops(0, [few]) * d_head / d  # d_head multiply-adds a token, not d
        tracked = {"t": np.arange(len(X)) % vocab}
        _assert_same_annotations(lens, X, plain.stats(X, 5, tracked), lens.stats(X[:0], 5, tracked, [few]))


def test_the_ingestor_keeps_a_models_circuits_for_the_next_process(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENSGRAPH_CACHE", str(tmp_path))
    monkeypatch.setenv("LENSGRAPH_CIRCUIT_CACHE_GB", "1")
    first = Ingestor("random:llama-tiny")
    with torch.no_grad():
        with monkeypatch.context() as m:
            m.setattr(lens_module, "FACTOR_MARGIN", 1e9)  # three passes pay for every circuit
            annotate(_layouts(first, [FRANCE, IOI, JAPAN]), first.lens, first.top_k)
        n_layers = first.loaded.spec.n_layers
        files = sorted(p.name for p in (tmp_path / "circuits").glob("*/*.npy"))
        assert len(files) == 3 * n_layers and f"{n_layers - 1}-W_K.npy" in files

        second = Ingestor("random:llama-tiny")  # as a new process would, from the disk
        (b,) = _layouts(second, [FRANCE])
        circuits, direct = second.lens.plan(b.factored)
        assert len(circuits) == 3 * n_layers and not direct  # one pass: too few rows to build any
        plain = annotate([b], LogitLens(second.lens.final_norm, second.lens.W_U, second.lens.b_U), second.top_k)
        _assert_same_annotations(second.lens, _vectors(b), plain[0], annotate([b], second.lens, second.top_k)[0])
