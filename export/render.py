"""Render a subgraph (any query result) as a figure: the flow graph, the attention view or the trajectory.

    from export import render
    render(graph, "fig.svg", view="flow", theme="print", title="…", caption="…")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from export.attention import attention_dot
from export.figure import Figure
from export.flow import flow_dot, is_large
from export.graphviz import DPI, FORMATS, TIMEOUT_S, layout
from export.theme import THEMES
from export.trajectory import trajectory_dot
from lensgraph.errors import InputError
from lensgraph.subgraph import Subgraph

VIEWS = ("flow", "attention", "trajectory")


def check(graph: Subgraph) -> None:
    """A subgraph the figures can draw: nodes with unique uids, edges between them."""
    if not graph.nodes:
        raise InputError("the subgraph is empty: nothing to draw")
    uids = set()
    for node in graph.nodes:
        uid = node.get("uid")
        if not isinstance(uid, str) or not uid:
            raise InputError(f"every node needs a uid; got {node!r:.120}")
        if uid in uids:
            raise InputError(f"node {uid} appears twice in the subgraph")
        uids.add(uid)
    for edge in graph.edges:
        for end in ("source", "target"):
            if edge.get(end) not in uids:
                raise InputError(f"edge {edge.get('source')} → {edge.get('target')} ({edge.get('kind')}): its "
                                 f"{end} is not a node of the subgraph")


def figure(title: str | None = None, caption: str = "", theme: str = "light") -> Figure:
    if theme not in THEMES:
        raise InputError(f"no theme {theme!r}; choose one of {', '.join(THEMES)}")
    return Figure(title, caption, THEMES[theme])


def to_dot(graph: Subgraph, view: str = "flow", *, title: str | None = None, caption: str = "",
           theme: str = "light", heads: Sequence[int] | None = None) -> str:
    """The figure's DOT text, byte-identical for the same input."""
    check(graph)
    fig = figure(title, caption, theme)
    if view == "flow":
        return flow_dot(graph, fig)
    if view == "attention":
        return attention_dot(graph, fig, heads)
    if view == "trajectory":
        return trajectory_dot(graph, fig)
    raise InputError(f"no view {view!r}; choose one of {', '.join(VIEWS)}")


def output_format(out: str | Path, fmt: str | None = None) -> str:
    fmt = (fmt or Path(out).suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise InputError(f"cannot export {fmt!r}; choose one of {', '.join(FORMATS)} (by the file's suffix or --format)")
    return fmt


def render(graph: Subgraph, out: str | Path, fmt: str | None = None, *, view: str = "flow",
           title: str | None = None, caption: str = "", theme: str = "light", heads: Sequence[int] | None = None,
           timeout_s: float = TIMEOUT_S, dpi: int = DPI) -> Path:
    """Write the figure to `out` as SVG, PDF, PNG or DOT (from the suffix unless `fmt` is given)."""
    out = Path(out)
    fmt = output_format(out, fmt)
    text = to_dot(graph, view, title=title, caption=caption, theme=theme, heads=heads)
    if fmt == "dot":
        data = text.encode("utf-8")
    else:
        positioned = view != "flow" or is_large(graph)
        data = layout(text, fmt, positioned, timeout_s, dpi)
    try:
        out.write_bytes(data)
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror}") from None
    return out
