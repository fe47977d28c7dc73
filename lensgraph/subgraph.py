"""A subgraph: what subgraph queries return and export/ renders. Versioned when serialised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT = "lensgraph.subgraph/1"


@dataclass
class Subgraph:
    nodes: list[dict[str, Any]]  # each has `uid`, plus whatever properties the query returned
    edges: list[dict[str, Any]]  # each has `source`, `target` (uids), `kind`, `score`
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. the pass, its prompt and target

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "meta": self.meta, "nodes": self.nodes, "edges": self.edges}
