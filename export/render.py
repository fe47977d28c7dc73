"""A plain Graphviz render of a subgraph: flow left to right, one cluster per layer.

Layout always runs under a time limit; above LARGE nodes positions are computed here (layer on x,
order on y) and drawn with `neato -n2`, since `dot`'s layout time grows super-linearly.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from lensgraph.errors import InputError, LensgraphError
from lensgraph.subgraph import Subgraph

FORMATS = ("svg", "pdf", "png", "dot")
LARGE = 400
TIMEOUT_S = 60.0


def _quote(text: str) -> str:
    """A DOT double-quoted string; whitespace tokens are shown visibly."""
    shown = text.replace("\n", "⏎").replace("\t", "⇥")
    if shown.strip() == "":
        shown = "␣" * len(shown)
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(node: dict) -> str:
    head = f" h{node['head']}" if node.get("head") is not None else ""
    src = f" s{node['position']}" if node.get("kind") in ("key", "value") else ""
    top = (node.get("top_tokens") or [""])[0]
    return f"{node['kind']}{head}{src}\n{top}"


def to_dot(graph: Subgraph) -> str:
    """Deterministic DOT text: nodes and edges sorted, one cluster per layer."""
    large = len(graph.nodes) > LARGE
    by_layer: dict[object, list[dict]] = defaultdict(list)
    for node in sorted(graph.nodes, key=lambda n: n["uid"]):
        by_layer[node.get("layer")].append(node)
    title = graph.meta.get("prompt", "")
    lines = ["digraph lensgraph {", "  rankdir=LR;", '  node [shape=box, fontname="DejaVu Sans", fontsize=9];',
             f"  label={_quote(title)};"]
    for col, layer in enumerate(sorted(by_layer, key=lambda v: (v is None, v if v is not None else 0))):
        name = "final" if layer is None else f"L{layer}"
        lines.append(f"  subgraph cluster_{col} {{ label={_quote(name)};")
        for row, node in enumerate(by_layer[layer]):
            pos = f', pos="{col * 220},{-row * 40}!"' if large else ""
            tip = f"{node['uid']} top: {', '.join(node.get('top_tokens') or [])}"
            lines.append(f"    {_quote(node['uid'])} [label={_quote(_label(node))}, tooltip={_quote(tip)}{pos}];")
        lines.append("  }")
    for edge in sorted(graph.edges, key=lambda e: (e["source"], e["target"])):
        width = 0.5 + 2.5 * max(0.0, min(1.0, float(edge.get("score") or 0.0)))
        lines.append(f"  {_quote(edge['source'])} -> {_quote(edge['target'])} "
                     f"[penwidth={width:.2f}, tooltip={_quote(edge['kind'])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: Subgraph, out: str | Path, fmt: str | None = None, timeout_s: float = TIMEOUT_S) -> Path:
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise InputError(f"cannot export {fmt!r}; choose one of {', '.join(FORMATS)}")
    text = to_dot(graph)
    if fmt == "dot":
        out.write_text(text, encoding="utf-8")
        return out
    engine = "neato" if len(graph.nodes) > LARGE else "dot"
    exe = shutil.which(engine)
    if exe is None:
        raise LensgraphError("Graphviz is not installed: apt-get install graphviz (or brew install graphviz)")
    args = [exe, f"-T{fmt}", "-o", str(out)] + (["-n2"] if engine == "neato" else [])
    try:
        proc = subprocess.run(args, input=text.encode(), capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise LensgraphError(f"Graphviz layout of {len(graph.nodes)} nodes took over {timeout_s:.0f} s; "
                             "export fewer layers") from None
    if proc.returncode != 0:
        raise LensgraphError(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    return out
