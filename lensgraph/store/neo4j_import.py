"""The bulk path for backfills: passes as CSV files for `neo4j-admin database import full`.

`neo4j-admin` writes Neo4j's store files directly (~1M records/s) into a new, offline database, far faster
than transactions. One header file and one data file per table, the headers in the import tool's format
(`uid:ID(HiddenState)`, `:START_ID(HiddenState)`, `:END_ID(Neuron)`, `score:double`, `top_tokens:string[]`),
plus import.sh (the command line) and schema.cypher (the constraints and indexes, to run once after the
import). docs/NEO4J.md walks through it.

Cells are formatted column by column with Arrow compute (no per-cell Python). Strings are always quoted (an
empty string stays an empty string; an unquoted empty cell is null: no property). An empty list is written
as an empty cell too, so it is imported as an absent property (the import tool cannot express an empty array).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lensgraph import schema
from lensgraph.errors import InputError
from lensgraph.store import Store
from lensgraph.store.copy import complete_passes, read_model, read_pass
from lensgraph.store.neo4j import ddl

_TYPES = {"STRING": "string", "INT64": "long", "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean"}
# Array delimiters, tried in order: the first that no exported string contains is used (token texts can
# hold any character, ';' and ',' included).
DELIMITERS = ("\x1f", "\x1e", "\x1d", "\u241f", "\ue000")
NODE_ORDER = ("Meta", "Model", "Token", "Neuron", "Pass", "HiddenState")


def header(table: str) -> list[str]:
    """The import tool's header of a node or relationship table."""
    if table in schema.REL_TABLES:
        rel = schema.REL_TABLES[table]
        head = [f":START_ID({rel.source})", f":END_ID({rel.target})"]
        columns = rel.columns
    else:
        columns = schema.NODE_TABLES[table]
        key = next(iter(columns))  # the primary key is the node's id in its own id space, and stays a property
        head = [f"{key}:ID({table})"]
        columns = {c: t for c, t in columns.items() if c != key}
    for name, kind in columns.items():
        base = kind.removesuffix("[]")
        head.append(f"{name}:{_TYPES[base]}{'[]' if kind.endswith('[]') else ''}")
    return head


def _quote(strings: pa.Array) -> pa.Array:
    doubled = pc.replace_substring(strings, '"', '""')
    return pc.binary_join_element_wise('"', doubled, '"', "")  # null stays null: an empty cell


def _plain_cells(values: pa.Array, kind: str) -> pa.Array:
    """Values of one scalar type as unquoted text the import tool parses (Java's number syntax)."""
    text = pc.cast(values, pa.string())
    if kind in ("DOUBLE", "FLOAT"):
        for arrow, java in (("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")):
            text = pc.replace_substring_regex(text, f"^{arrow}$", java)
    return text


def cells(column: pa.Array, kind: str, delimiter: str) -> pa.Array:
    """One column as CSV cells (strings; null = empty cell)."""
    if kind.endswith("[]"):
        base = kind.removesuffix("[]")
        if base == "STRING" and len(column.values) and pc.any(pc.match_substring(column.values, delimiter)).as_py():
            raise InputError(f"a list value contains the array delimiter {delimiter!r}; export again "
                             "(the delimiter is chosen from the vocabularies)")
        items = pa.ListArray.from_arrays(column.offsets, _plain_cells(column.values, base), mask=column.is_null())
        joined = pc.binary_join(items, delimiter)
        joined = pc.if_else(pc.equal(pc.list_value_length(column), 0), pa.scalar(None, pa.string()), joined)
        return _quote(joined)
    if kind == "STRING":
        return _quote(column)
    return _plain_cells(column, kind)


def csv_lines(table: pa.Table, kinds: dict[str, str], delimiter: str) -> list[str]:
    """A table's rows as CSV lines, columns in `kinds` order."""
    table = table.combine_chunks()
    columns = [cells(table.column(name).chunk(0) if table.num_rows else pa.array([], table.schema.field(name).type),
                     kind, delimiter) for name, kind in kinds.items()]
    lines = pc.binary_join_element_wise(*columns, ",", null_handling="replace", null_replacement="")
    return lines.to_pylist()


def _kinds(table: str) -> dict[str, str]:
    if table in schema.REL_TABLES:
        return {"from": "STRING", "to": "STRING", **schema.REL_TABLES[table].columns}
    return schema.NODE_TABLES[table]


def pick_delimiter(texts: Sequence[pa.ChunkedArray | pa.Array]) -> str:
    for candidate in DELIMITERS:
        if not any(len(t) and pc.any(pc.match_substring(t, candidate)).as_py() for t in texts):
            return candidate
    raise InputError("every candidate array delimiter occurs in the vocabulary")


def command(delimiter: str, database: str = "neo4j") -> list[str]:
    """The neo4j-admin command line, relative to the export folder."""
    args = ["neo4j-admin", "database", "import", "full", database, "--id-type=string",
            f"--array-delimiter=U+{ord(delimiter):04X}", "--multiline-fields=true", "--trim-strings=false"]
    args += [f"--nodes={t}={t}.header.csv,{t}.csv" for t in NODE_ORDER]
    args += [f"--relationships={r}={r}.header.csv,{r}.csv" for r in schema.REL_TABLES]
    return args


@dataclass
class ImportExport:
    out: Path
    delimiter: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def command(self) -> list[str]:
        return command(self.delimiter)


def _script(delimiter: str) -> str:
    args = command(delimiter)
    args[4] = '"$db"'  # the database name: the script's first argument
    lines = " \\\n  ".join(a if a.startswith('"') else shlex.quote(a) for a in args)
    return ("#!/bin/sh\n"
            "# Import this folder into a new, stopped Neo4j 5 database (written by lensgraph export-neo4j-import).\n"
            "# Usage: ./import.sh [DATABASE [NEO4J-ADMIN OPTION...]], e.g. ./import.sh neo4j --overwrite-destination=true;\n"
            "# then run schema.cypher once (cypher-shell -f schema.cypher). docs/NEO4J.md.\n"
            'set -e\ncd "$(dirname "$0")"\ndb="${1:-neo4j}"; [ $# -gt 0 ] && shift\n'
            f'exec {lines} \\\n  "$@"\n')


def export_import(store: Store, out: str | Path, model: str = "", passes: Sequence[str] = (),
                  progress: Callable[[str], None] | None = None) -> ImportExport:
    """Write the complete passes of `store` (all, of `model`, or `passes`) and their models' static nodes
    as neo4j-admin import files in `out`, a new or empty folder."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty: export into a new folder (the import reads every file it names)")
    out.mkdir(parents=True, exist_ok=True)
    todo = complete_passes(store, model, passes)
    if not todo:
        raise InputError("no complete passes to export" + (f" for model {model!r}" if model else ""))
    models = {name: read_model(store, name) for name in sorted({p["model"] for p in todo})}
    delimiter = pick_delimiter([m.tokens.column("text") for m in models.values()])
    result = ImportExport(out, delimiter, {t: 0 for t in (*NODE_ORDER, *schema.REL_TABLES)})
    files = {}
    try:
        for table in result.rows:
            (out / f"{table}.header.csv").write_text(",".join(header(table)) + "\n", encoding="utf-8")
            files[table] = open(out / f"{table}.csv", "w", encoding="utf-8", newline="")

        def write(table: str, data: pa.Table) -> None:
            lines = csv_lines(data, _kinds(table), delimiter)
            if lines:
                files[table].write("\n".join(lines) + "\n")
            result.rows[table] += len(lines)

        write("Meta", pa.table({"key": ["schema_version"], "value": [str(schema.SCHEMA_VERSION)]}))
        for graph in models.values():
            write("Model", pa.Table.from_pylist([graph.model], schema=schema.arrow_schema("Model")))
            write("Token", graph.tokens)
            write("Neuron", graph.neurons)
        for p in todo:
            graph = read_pass(store, p["uid"])
            write("Pass", pa.Table.from_pylist([dict(graph.pass_, complete=True)], schema=schema.arrow_schema("Pass")))
            write("HiddenState", graph.states)
            for rel, table in graph.rels.items():
                write(rel, table)
            if progress:
                progress(p["uid"])
    finally:
        for f in files.values():
            f.close()
    (out / "schema.cypher").write_text(";\n".join(ddl()) + ";\n", encoding="utf-8")
    script = out / "import.sh"
    script.write_text(_script(delimiter), encoding="utf-8")
    script.chmod(0o755)
    return result
