"""Typed wrappers around the query modules that return a Subgraph (what export/ renders)."""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable
from typing import Any, get_type_hints

from lensgraph import schema
from lensgraph.errors import InputError
from lensgraph.store import Store
from lensgraph.subgraph import Subgraph
from queries import Param, run, run_many


def _pass_info(store: Store, pass_uid: str) -> dict[str, Any]:
    info = store.rows("MATCH (p:Pass) WHERE p.uid = $u AND p.complete = true "
                      "RETURN p.prompt AS prompt, p.target AS target, p.model AS model", {"u": pass_uid})
    if not info:
        raise InputError(f"no complete pass {pass_uid!r} in the store; `lensgraph passes` lists them")
    return info[0]


def pass_layers(store: Store, pass_uid: str, first: int = 0, last: int = 1_000_000) -> Subgraph:
    """Every state of a pass in layers first..last and the FLOWS_TO edges among them."""
    info = _pass_info(store, pass_uid)
    where = {"pass": pass_uid, "first": first, "last": last}
    nodes, edges = run_many(store, [("pass-layers", where), ("flows-among", where)])
    if not nodes:
        raise InputError(f"pass {pass_uid} has no states in layers {first}..{last}")
    return Subgraph(nodes, edges, {"pass": pass_uid, **info, "layers": [first, last]})


def visit_graph(store: Store, pass_uid: str, first: int = 0, last: int = 1_000_000, k: int = 3,
                k_attn: int = 5, k_mlp: int = 10) -> Subgraph:
    """VISIT's reduced graph of a pass: every head with its top-k keys and values by attention, and per layer
    the k_attn strongest W_O neurons and k_mlp strongest MLP neurons (by |coef|) with ACTIVATES edges."""
    info = _pass_info(store, pass_uid)
    where = {"pass": pass_uid, "first": first, "last": last}
    nodes, edges, neurons = run_many(store, [("visit-states", {"k": k, **where}), ("visit-edges", {"k": k, **where}),
                                             ("visit-neurons", {"k_attn": k_attn, "k_mlp": k_mlp, **where})])
    if not nodes:
        raise InputError(f"pass {pass_uid} has no states in layers {first}..{last}")
    edges += [{"source": n["source"], "target": n["uid"], "kind": "activates", "score": abs(n["coef"]),
               "coef": n["coef"], "rank": n["rank"]} for n in neurons]
    nodes += [{key: v for key, v in n.items() if key != "source"} for n in neurons]
    return Subgraph(nodes, edges, {"pass": pass_uid, **info, "layers": [first, last], "k": k,
                                   "k_attn": k_attn, "k_mlp": k_mlp})


def flow_routes(store: Store, pass_uid: str, tau: float = 0.04, keys: bool = False) -> Subgraph:
    """LM-TT information-flow routes: the FLOWS_TO edges with score ≥ tau that lie on a path back from the
    final node (the model's output); edges above tau that lead nowhere near the output are dropped."""
    info = _pass_info(store, pass_uid)
    into: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in run(store, "flow-edges", tau=tau, keys=keys, **{"pass": pass_uid}):
        into[e["target"]].append(e)
    final = schema.state_uid(pass_uid, None, schema.FINAL_KIND)
    seen, todo, edges = {final}, [final], []
    while todo:  # walk the kept edges backwards from the output
        for e in into[todo.pop()]:
            edges.append(e)
            if e["source"] not in seen:
                seen.add(e["source"])
                todo.append(e["source"])
    nodes = run(store, "states", **{"pass": pass_uid, "uids": sorted(seen)})
    edges.sort(key=lambda e: (e["source"], e["target"]))
    return Subgraph(nodes, edges, {"pass": pass_uid, **info, "tau": tau})


# Subgraph queries by name: `lensgraph export --query NAME --param …` renders any of them. A wrapper added
# here becomes exportable; its keyword parameters are the --param names (`pass` stands for `pass_uid`).
SUBGRAPH_QUERIES: dict[str, Callable[..., Subgraph]] = {
    "pass-layers": pass_layers,
    "visit-graph": visit_graph,
    "flow-routes": flow_routes,
}


def run_subgraph(store: Store, name: str, params: dict[str, Any]) -> Subgraph:
    """Run a subgraph query by name; string values (from the command line) are converted by its type hints."""
    bound = bind_subgraph(name, params)
    return SUBGRAPH_QUERIES[name](store, **bound)


def bind_subgraph(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check and convert a subgraph query's parameters (before any store is opened)."""
    if name not in SUBGRAPH_QUERIES:
        raise InputError(f"no subgraph query named {name!r}; these can be exported: {', '.join(SUBGRAPH_QUERIES)}")
    fn = SUBGRAPH_QUERIES[name]
    hints = get_type_hints(fn)
    accepted = [p for p in inspect.signature(fn).parameters.values() if p.name != "store"]
    given = {("pass_uid" if k == "pass" else k): v for k, v in params.items()}
    unknown = sorted(set(given) - {p.name for p in accepted})
    if unknown:
        raise InputError(f"subgraph query {name} has no parameter {', '.join(unknown)}; it takes: "
                         + ", ".join("pass" if p.name == "pass_uid" else p.name for p in accepted))
    bound = {}
    for p in accepted:
        shown = "pass" if p.name == "pass_uid" else p.name
        if p.name in given:
            kind = hints.get(p.name, str)
            bound[p.name] = Param(shown, getattr(kind, "__name__", "str"), None, "").convert(given[p.name])
        elif p.default is inspect.Parameter.empty:
            raise InputError(f"subgraph query {name} needs --param {shown}=…")
    return bound
