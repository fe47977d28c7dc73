"""The records that pass from ingest to a store: one pass's graph, and a model's static nodes.

Tables are Arrow tables whose columns follow lensgraph.schema; relationship tables start with
`from` and `to` uid columns. The format is versioned by schema.SCHEMA_VERSION.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa


@dataclass
class ModelGraph:
    """Static nodes shared by every pass of one model, written once per store."""

    model: dict[str, Any]  # one Model row
    tokens: pa.Table  # Token rows: the vocabulary
    neurons: pa.Table  # Neuron rows: every MLP and W_O unit with its static logit-lens annotation


@dataclass
class PassGraph:
    """The full, unpruned flow graph of one forward pass."""

    pass_: dict[str, Any]  # one Pass row (complete is set by the store, last)
    states: pa.Table  # HiddenState rows
    flows: pa.Table  # FLOWS_TO rows
    activates: pa.Table  # ACTIVATES rows: every neuron of every layer
    promotes: pa.Table  # PROMOTES rows: each state to its top tokens

    @property
    def uid(self) -> str:
        return str(self.pass_["uid"])

    @property
    def rels(self) -> dict[str, pa.Table]:
        """Every relationship table of the pass by schema name; HAS_STATE is derived from the states."""
        has_state = pa.table({"from": self.states.column("pass"), "to": self.states.column("uid")})
        return {"HAS_STATE": has_state, "FLOWS_TO": self.flows, "ACTIVATES": self.activates,
                "PROMOTES": self.promotes}

    @property
    def n_rows(self) -> int:
        """Rows the pass writes: its Pass row, its states, and its relationships (one HAS_STATE per state)."""
        return 1 + 2 * self.states.num_rows + self.flows.num_rows + self.activates.num_rows + self.promotes.num_rows
