"""Cypher query modules, one `.cypher` file each, loaded by name (after aiosql).

A file starts with a comment header: its first line is the summary, the following lines the docstring,
and `@param name: type = default  description` lines declare its parameters (type: str, int, float,
bool or list). An optional string parameter defaults to '' and means "any". `@order col, …` sorts the rows
in Python, for a query whose own ORDER BY cannot (one that joins parts by UNION). Queries take parameters
only; nothing is ever formatted into the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from lensgraph.errors import InputError
from lensgraph.store import Store

HERE = Path(__file__).parent
_PARAM = re.compile(r"@param\s+(\w+)\s*:\s*(\w+)\s*(?:=\s*(\S+))?\s*(.*)")
_ORDER = re.compile(r"@order\s+(.+)")
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "list": list}
_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any  # _REQUIRED when the caller must give it
    doc: str

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def convert(self, value: Any) -> Any:
        """A value from the command line (a string) or Python, as this parameter's type."""
        kind = _TYPES[self.type]
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        if isinstance(value, str):
            try:
                if kind is bool:
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    return value.lower() in ("true", "1")
                if kind is list:
                    return [v for v in value.split(",") if v]
                return kind(value)
            except ValueError:
                pass
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"parameter {self.name} must be {self.type}, got {value!r}")


@dataclass(frozen=True)
class Query:
    name: str  # as on the command line: heads-promoting
    summary: str
    doc: str
    params: tuple[Param, ...]
    text: str  # the Cypher, header included (a comment)
    variants: tuple[tuple[str, str], ...] = ()  # (dialect, text) from `<name>.<dialect>.cypher` beside it
    order: tuple[str, ...] = ()  # columns the rows are sorted by in Python (`@order`), never null

    def text_for(self, dialect: str) -> str:
        """The text a store of this dialect runs: its variant file where one exists (e.g. name.neo4j.cypher)."""
        return dict(self.variants).get(dialect, self.text)

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"query {self.name} has no parameter {', '.join(unknown)}; it takes: "
                             f"{', '.join(known) or 'none'}")
        bound = {}
        for p in self.params:
            if p.name in given and given[p.name] is not None:
                bound[p.name] = p.convert(given[p.name])
            elif p.required:
                raise InputError(f"query {self.name} needs --param {p.name}=… ({p.type}: {p.doc})")
            else:
                bound[p.name] = p.default
        return bound


def _default(kind: str, text: str | None) -> Any:
    if text is None:
        return _REQUIRED
    return Param("default", kind, None, "").convert(text.strip("'\""))


def _parse(path: Path) -> Query:
    text = path.read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line[2:].strip())
    params, doc, order = [], [], ()
    for line in header[1:]:
        m, sort = _PARAM.match(line), _ORDER.match(line)
        if sort:
            order = tuple(c.strip() for c in sort.group(1).split(","))
        elif m:
            name, kind, default, desc = m.groups()
            if kind not in _TYPES:
                raise ValueError(f"{path.name}: parameter {name} has unknown type {kind}")
            params.append(Param(name, kind, _default(kind, default), desc.strip()))
        else:
            doc.append(line)
    variants = tuple((v.suffixes[-2][1:], v.read_text(encoding="utf-8"))
                     for v in sorted(path.parent.glob(f"{path.stem}.*.cypher")))
    return Query(path.stem.replace("_", "-"), header[0] if header else "", "\n".join(doc).strip(),
                 tuple(params), text, variants, order)


def catalog() -> dict[str, Query]:
    modules = [p for p in sorted(HERE.glob("*.cypher")) if "." not in p.stem]  # not the dialect variants
    return {q.name: q for q in map(_parse, modules)}


def load(name: str) -> Query:
    path = HERE / f"{name.replace('-', '_')}.cypher"
    if any(c in name for c in "._/\\") or not path.is_file():  # a name as listed (heads-promoting), never a path
        raise InputError(f"no query named {name!r}; `lensgraph queries` lists them: {', '.join(catalog())}")
    return _parse(path)


def run(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    return run_many(store, [(name, params)])[0]


def run_many(store: Store, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Independent query modules, `(name, params)` each, at once where the store can (Store.rows_many)."""
    queries = [load(name) for name, _ in calls]
    bound = [q.bind(params) for q, (_, params) in zip(queries, calls)]
    for b in bound:
        if b.get("token"):  # '' means any token
            _check_token(store, b["token"], b.get("model", ""))
    dialect = getattr(store, "dialect", "")
    found = store.rows_many([(q.text_for(dialect), b) for q, b in zip(queries, bound)])
    for q, rows in zip(queries, found):
        if q.order:
            rows.sort(key=itemgetter(*q.order))
    return found


def _check_token(store: Store, text: str, model: str) -> None:
    """A token parameter must name a vocabulary entry exactly, or the query would silently match nothing."""
    found = store.rows("MATCH (t:Token) WHERE t.text = $t AND ($m = '' OR t.model = $m) RETURN t.id AS id LIMIT 1",
                       {"t": text, "m": model})
    if not found:
        where = f"the vocabulary of {model}" if model else "any stored model's vocabulary"
        hint = " (tokens usually carry their leading space, e.g. ' Paris')" if not text.startswith(" ") else ""
        raise InputError(f"token {text!r} is not in {where}{hint}")
