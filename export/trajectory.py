"""The trajectory figure: the target token's probability and rank in the logit lens of each layer's
output (the resid_post states), as two stacked line plots sharing the layer axis.

Drawn as a Graphviz graph with fixed positions (`neato -n2`), so it comes out in every format with the
same fonts as the other figures and without a plotting library.
"""

from __future__ import annotations

import math
from typing import Any

from export.escape import dot_lines, dot_string, shown
from export.figure import Figure, caption_node, header
from lensgraph.errors import InputError
from lensgraph.subgraph import Subgraph

PLOT_H, PANEL_GAP = 130.0, 46.0  # points


def points(graph: Subgraph) -> list[dict[str, Any]]:
    """The resid_post states with a target rank, by layer."""
    found = sorted((n for n in graph.nodes if n.get("kind") == "resid_post" and n.get("target_rank") is not None
                    and n.get("layer") is not None), key=lambda n: n["layer"])
    if not found:
        raise InputError("the trajectory needs resid_post states with target_rank/target_prob; export a "
                         "query that returns them, e.g. pass-layers over all layers (--layers 0:)")
    return found


def _invisible(name: str, x: float, y: float) -> str:
    return f'  {name} [shape=point, width=0, height=0, style=invis, pos="{x:.1f},{y:.1f}"];'


def _text(name: str, text: str, x: float, y: float, size: float = 8, css: str = "axis") -> str:
    return (f'  {name} [shape=plaintext, class="{css}", label={dot_string(text)}, fontsize={size}, '
            f'width=0, height=0, margin=0, pos="{x:.1f},{y:.1f}"];')


def _line(a: str, b: str, colour: str, width: float = 0.6, style: str = "solid") -> str:
    return f'  {a} -> {b} [arrowhead=none, color="{colour}", penwidth={width}, style={style}];'


def trajectory_dot(graph: Subgraph, fig: Figure) -> str:
    """Deterministic DOT text (with positions) of the trajectory figure."""
    theme = fig.theme
    pts = points(graph)
    layers = [p["layer"] for p in pts]
    lo, hi = min(layers), max(layers)
    width = max(260.0, 16.0 * (hi - lo + 1))
    x_of = lambda layer: width * ((layer - lo) / (hi - lo) if hi > lo else 0.5)  # noqa: E731
    worst = max(int(p["target_rank"]) for p in pts)
    decades = max(1, math.ceil(math.log10(max(worst, 10))))
    target = graph.meta.get("target")
    name = f"'{shown(target)}'" if target is not None else "the target"
    panels = [  # (title, value -> 0..1 of the height with 1 on top, ticks (value, text), value of a point)
        (f"probability of {name}", lambda v: v, [(t / 4, f"{t / 4:g}") for t in range(5)], "target_prob"),
        (f"rank of {name} (log scale)", lambda v: 1 - math.log10(max(v, 1)) / decades,
         [(10 ** d, f"{10 ** d:,}") for d in range(decades + 1)], "target_rank"),
    ]
    lines = header(fig, graph.meta, ", splines=line, outputorder=edgesfirst")
    lines.append(_invisible("headroom", width / 2, 30))  # keeps the title clear of the first panel's label
    for i, (title, scale, ticks, field) in enumerate(panels):
        top = -i * (PLOT_H + PANEL_GAP)
        y_of = lambda v: top - PLOT_H * (1 - scale(v))  # noqa: E731,B023
        lines.append(f'  subgraph "cluster_panel{i}" {{ graph [label={dot_string(title)}, fontsize=10, '
                     f'color="{theme.ink}", penwidth=0.8, bb="-6,{top - PLOT_H - 6:.1f},{width + 6:.1f},{top + 6:.1f}", '
                     f'lp="{width / 2:.1f},{top + 14:.1f}"];')
        for j, (value, text) in enumerate(ticks):
            y = y_of(value)
            lines += [_invisible(f"g{i}_{j}a", -6, y), _invisible(f"g{i}_{j}b", width + 6, y),
                      _line(f"g{i}_{j}a", f"g{i}_{j}b", "#dddddd", 0.5, "dashed"),
                      _text(f"t{i}_{j}", text, -10 - 3.2 * len(text), y)]
        prev = None
        for p in pts:
            node = f"p{i}_{p['layer']}"
            tip = [f"layer {p['layer']}: {name} rank {p['target_rank']}, probability {float(p['target_prob']):.3g}",
                   p["uid"]]
            fill = theme.fill(int(p["target_rank"]))
            lines.append(f'  {node} [shape=circle, class="point", width=0.09, height=0.09, fixedsize=true, '
                         f'style=filled, fillcolor="{fill}", color="{theme.ink}", label="", '
                         f'tooltip={dot_lines(tip)}, pos="{x_of(p["layer"]):.1f},{y_of(float(p[field])):.1f}"];')
            if prev:
                lines.append(_line(prev, node, theme.attention, 1.4))
            prev = node
        lines.append("  }")
    bottom = -(PLOT_H + PANEL_GAP) - PLOT_H
    step = max(1, math.ceil((hi - lo + 1) / 12))
    for layer in range(lo, hi + 1, step):
        lines.append(_text(f"x{layer}", str(layer), x_of(layer), bottom - 14))
    lines.append(_text("xtitle", "layer (logit lens of the block's output, resid_post)", width / 2, bottom - 30, 9))
    lines.append(caption_node(fig, width / 2, bottom - 44))
    lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"
