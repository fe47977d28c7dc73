"""Copy passes, and the static nodes of their models, from one store to another (`lensgraph copy`).

Written against the Store protocol only, so it copies between any two backends (embedded → Neo4j is the
common case; embedded → embedded is what the tests run). Resumable and idempotent: a pass complete at the
destination is skipped, a model's static nodes are written once, and a pass a crash left incomplete at the
destination is rewritten from scratch by the destination's own write_pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lensgraph import schema
from lensgraph.errors import InputError
from lensgraph.records import ModelGraph, PassGraph
from lensgraph.store import Store


def _columns(var: str, table: str) -> str:
    return ", ".join(f"{var}.{c} AS {c}" for c in schema.NODE_TABLES[table])


def node_query(table: str, where: str) -> str:
    """The rows of a node table, columns in schema order (portable Cypher: runs on every backend)."""
    return f"MATCH (n:{table}) WHERE {where} RETURN {_columns('n', table)}"


# relationships read from a source store; HAS_STATE is not read: PassGraph derives it from the states
PASS_RELS = ("FLOWS_TO", "ACTIVATES", "PROMOTES")


def rel_query(rel: str) -> str:
    """The relationships of one pass: every one of PASS_RELS starts at a HiddenState of that pass."""
    r = schema.REL_TABLES[rel]
    props = "".join(f", r.{c} AS {c}" for c in r.columns)
    return (f"MATCH (a:{r.source})-[r:{rel}]->(b:{r.target}) WHERE a.pass = $u "
            f"RETURN a.uid AS `from`, b.{next(iter(schema.NODE_TABLES[r.target]))} AS `to`{props}")


PASSES = ("MATCH (p:Pass) WHERE p.complete = true AND ($model = '' OR p.model = $model) "
          "RETURN p.uid AS uid, p.model AS model ORDER BY uid")


def statements() -> list[str]:
    """Every Cypher statement copy sends to a source (tests parse them with Neo4j's parser)."""
    return [PASSES, node_query("Model", "n.name = $m"), node_query("Token", "n.model = $m"),
            node_query("Neuron", "n.model = $m"), node_query("Pass", "n.uid = $u"),
            node_query("HiddenState", "n.pass = $u"), *(rel_query(rel) for rel in PASS_RELS)]


def read_table(store: Store, cypher: str, params: dict[str, Any], table: str) -> pa.Table:
    """A query's rows as an Arrow table of the schema's types. A store with an `arrow(cypher, params)` method
    (a fast columnar path) is read through it; any other through `rows`."""
    want = schema.arrow_schema(table)
    arrow = getattr(store, "arrow", None)
    if arrow is not None:
        return arrow(cypher, params).select(want.names).cast(want)
    return pa.Table.from_pylist(store.rows(cypher, params), schema=want)


def read_model(store: Store, name: str) -> ModelGraph:
    model = store.rows(node_query("Model", "n.name = $m"), {"m": name})
    if not model:
        raise InputError(f"no model {name!r} in the source store")
    return ModelGraph(model[0], read_table(store, node_query("Token", "n.model = $m"), {"m": name}, "Token"),
                      read_table(store, node_query("Neuron", "n.model = $m"), {"m": name}, "Neuron"))


def read_pass(store: Store, uid: str) -> PassGraph:
    found = store.rows(node_query("Pass", "n.uid = $u"), {"u": uid})
    if not found:
        raise InputError(f"no pass {uid!r} in the source store")
    p = {"u": uid}
    return PassGraph(found[0], read_table(store, node_query("HiddenState", "n.pass = $u"), p, "HiddenState"),
                     *(read_table(store, rel_query(rel), p, rel) for rel in PASS_RELS))


def complete_passes(store: Store, model: str = "", only: Sequence[str] = ()) -> list[dict[str, str]]:
    found = store.rows(PASSES, {"model": model})
    if only:
        known = {p["uid"] for p in found}
        missing = [u for u in only if u not in known]
        if missing:
            raise InputError(f"no complete pass {', '.join(map(repr, missing))} in the source store"
                             + (f" for model {model!r}" if model else ""))
        found = [p for p in found if p["uid"] in set(only)]
    return found


@dataclass
class CopyReport:
    models: int = 0  # models whose static nodes were written
    copied: int = 0  # passes written
    skipped: int = 0  # passes already complete at the destination
    rows: int = 0  # rows written, static nodes included


def copy_store(source: Store, dest: Store, model: str = "", passes: Sequence[str] = (),
               progress: Callable[[str, bool], None] | None = None) -> CopyReport:
    """Copy the complete passes of `source` (all, or of `model`, or the uids in `passes`) into `dest`.
    `progress(uid, copied)` is called after each pass."""
    report = CopyReport()
    todo = complete_passes(source, model, passes)
    for name in sorted({p["model"] for p in todo}):
        if not dest.has_model(name):
            graph = read_model(source, name)
            dest.write_model(graph)
            report.models += 1
            report.rows += 1 + graph.tokens.num_rows + graph.neurons.num_rows
    for p in todo:
        done = dest.pass_status(p["uid"]) is True
        if done:
            report.skipped += 1
        else:
            graph = read_pass(source, p["uid"])
            dest.write_pass(graph)
            report.copied += 1
            report.rows += graph.n_rows
        if progress:
            progress(p["uid"], not done)
    return report


def iter_passes(store: Store, model: str = "", only: Sequence[str] = ()) -> Iterator[PassGraph]:
    """Each complete pass of a store, read one at a time (the admin-import export streams these)."""
    for p in complete_passes(store, model, only):
        yield read_pass(store, p["uid"])
