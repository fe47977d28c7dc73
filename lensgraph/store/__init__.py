"""Graph store backends, chosen by the store address: neo4j://… (or bolt://…) is a Neo4j server
(lensgraph/store/neo4j.py), anything else a path to the embedded LadybugDB store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from lensgraph.records import ModelGraph, PassGraph


class Store(Protocol):
    def has_model(self, name: str) -> bool: ...

    def write_model(self, graph: ModelGraph) -> None: ...

    def pass_status(self, uid: str) -> bool | None:
        """None when the pass is absent, else whether it is complete."""
        ...

    def write_pass(self, graph: PassGraph) -> bool:
        """Write a pass and mark it complete last; False (a no-op) when it is already complete."""
        ...

    def write_passes(self, graphs: list[PassGraph]) -> list[bool]:
        """write_pass for each, as one transaction where the backend gains from it (the embedded store)."""
        ...

    def rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def rows_many(self, queries: Sequence[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """rows of each (cypher, params), for independent reads: a backend may run them at once."""
        ...

    def close(self) -> None: ...


def open_store(address: str, read_only: bool = False) -> Store:
    from lensgraph.store.neo4j import is_neo4j_address

    if is_neo4j_address(address):
        from lensgraph.store.neo4j import Neo4jStore

        return Neo4jStore(address, read_only=read_only)
    from lensgraph.store.embedded import EmbeddedStore

    return EmbeddedStore(address, read_only=read_only)
