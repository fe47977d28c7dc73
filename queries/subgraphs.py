"""Typed wrappers around the query modules that return a Subgraph."""

from __future__ import annotations

from lensgraph.errors import InputError
from lensgraph.store import Store
from lensgraph.subgraph import Subgraph
from queries import run


def pass_layers(store: Store, pass_uid: str, first: int = 0, last: int = 1_000_000) -> Subgraph:
    """Every state of a pass in layers first..last and the FLOWS_TO edges among them."""
    info = store.rows("MATCH (p:Pass) WHERE p.uid = $u AND p.complete = true "
                      "RETURN p.prompt AS prompt, p.target AS target, p.model AS model", {"u": pass_uid})
    if not info:
        raise InputError(f"no complete pass {pass_uid!r} in the store; `lensgraph passes` lists them")
    nodes = run(store, "pass-layers", **{"pass": pass_uid, "first": first, "last": last})
    if not nodes:
        raise InputError(f"pass {pass_uid} has no states in layers {first}..{last}")
    edges = run(store, "flows-among", **{"pass": pass_uid, "uids": [n["uid"] for n in nodes]})
    return Subgraph(nodes, edges, {"pass": pass_uid, **info[0], "layers": [first, last]})
