"""The attention figure, after BertViz's head view: for each chosen layer and head, the source tokens on
the left, the analysed (target) position on the right, and a line between them as wide and as opaque as
the attention. Read from the FLOWS_TO 'key' edges key_h[s] → query_h, whose score is the attention.

Positions are computed here (a grid: one row per layer, one column per head) and drawn by `neato -n2`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from export.escape import clipped, dot_lines, dot_string, html, shown
from export.figure import Figure, caption_node, header
from lensgraph.errors import InputError
from lensgraph.subgraph import Subgraph

ROW, TEXT_W, GAP, PANEL_GAP = 17.0, 92.0, 96.0, 34.0  # points


def _panels(graph: Subgraph, heads: Sequence[int] | None) -> dict[tuple[int, int], list[tuple[dict, dict, float]]]:
    """(layer, head) -> [(key node, query node, attention)] sorted by source position."""
    nodes = {n["uid"]: n for n in graph.nodes}
    panels: dict[tuple[int, int], list[tuple[dict, dict, float]]] = defaultdict(list)
    for e in graph.edges:
        if e.get("kind") != "key":
            continue
        key, query = nodes[e["source"]], nodes[e["target"]]
        if key.get("layer") is None or key.get("head") is None:
            continue
        if heads is None or key["head"] in heads:
            panels[(key["layer"], key["head"])].append((key, query, float(e.get("score") or 0.0)))
    if not panels:
        have = sorted({n.get("head") for n in graph.nodes if n.get("kind") == "key" and n.get("head") is not None})
        wanted = f" for heads {', '.join(map(str, heads))}" if heads is not None else ""
        raise InputError(f"the subgraph has no attention (FLOWS_TO 'key') edges{wanted}; "
                         + (f"its heads are {', '.join(map(str, have))}" if have else
                            "export a query that returns key and query states, e.g. pass-layers"))
    if heads is not None:
        missing = sorted({h for h in heads} - {h for _, h in panels})
        if missing:
            raise InputError(f"no attention edges for head {', '.join(map(str, missing))} in the subgraph")
    return {k: sorted(v, key=lambda r: (r[0].get("position") or 0, r[0]["uid"])) for k, v in sorted(panels.items())}


def _token_label(text: str, align: str) -> str:
    return (f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0"><TR><TD WIDTH="{TEXT_W:.0f}" ALIGN="{align}">'
            f"{html(clipped(text, 14))}</TD></TR></TABLE>>")


def attention_dot(graph: Subgraph, fig: Figure, heads: Sequence[int] | None = None) -> str:
    """Deterministic DOT text (with positions) of the attention figure."""
    theme = fig.theme
    panels = _panels(graph, heads)
    layers = sorted({layer for layer, _ in panels})
    cols = sorted({head for _, head in panels})
    n_src = max(max((k.get("position") or 0) for k, _, _ in rows) for rows in panels.values()) + 1
    panel_w = 2 * TEXT_W + GAP
    panel_h = n_src * ROW + 30.0
    lines = header(fig, graph.meta, ", splines=line, outputorder=edgesfirst")
    for (layer, head), rows in panels.items():
        px = cols.index(head) * (panel_w + PANEL_GAP)
        py = -layers.index(layer) * (panel_h + PANEL_GAP)
        top = py - 22.0  # first token row
        y_of = lambda s: top - s * ROW  # noqa: E731
        name = f"L{layer}h{head}"
        lines.append(f'  subgraph "cluster_{name}" {{ graph [label="layer {layer} · head {head}", fontsize=10, '
                     f'color="{theme.muted}", bb="{px - 6:.1f},{py - panel_h:.1f},{px + panel_w + 6:.1f},{py:.1f}", '
                     f'lp="{px + panel_w / 2:.1f},{py - 9:.1f}"];')
        query = rows[0][1]
        q_pos = query.get("position") if query.get("position") is not None else n_src - 1
        q_tip = [f"layer {layer} · head {head}: target position {q_pos}", f"token {shown(query.get('source_token'))!r}"]
        lines.append(f"    {name}_q [shape=plaintext, class=\"token target\", label="
                     f"{_token_label(shown(query.get('source_token')), 'LEFT')}, tooltip={dot_lines(q_tip)}, "
                     f'pos="{px + panel_w - TEXT_W / 2:.1f},{y_of(q_pos):.1f}", fontcolor="{theme.ink}"];')
        for key, _, a in rows:
            s = key.get("position") or 0
            tok = shown(key.get("source_token"))
            tip = [f"layer {layer} · head {head}: source {tok!r} (position {s}) → target {q_pos}",
                   f"attention {a:.3g}"]
            lines.append(f"    {name}_s{s} [shape=plaintext, class=\"token source\", label={_token_label(tok, 'RIGHT')}, "
                         f'tooltip={dot_lines(tip)}, pos="{px + TEXT_W / 2:.1f},{y_of(s):.1f}"];')
        lines.append("  }")
        for key, _, a in rows:
            s = key.get("position") or 0
            alpha = round(255 * (0.2 + 0.8 * min(1.0, max(0.0, a))))
            tip = f"layer {layer} · head {head}: {shown(key.get('source_token'))!r} → target, attention {a:.3g}"
            lines.append(f'  {name}_s{s} -> {name}_q [class="attention", arrowhead=none, '
                         f'color="{theme.attention}{alpha:02x}", penwidth={0.3 + 5.0 * min(1.0, max(0.0, a)):.2f}, '
                         f"tooltip={dot_string(tip)}];")
    bottom = -len(layers) * (panel_h + PANEL_GAP) + PANEL_GAP
    note = ["Line width and opacity: attention of the target position (right)",
            "to each source token (left), from the FLOWS_TO key edges."]
    lines.append(f'  legend [shape=plaintext, class="legend", fontsize=8, fontcolor="{theme.muted}", '
                 f'label={dot_lines(note)}, pos="{(len(cols) * (panel_w + PANEL_GAP) - PANEL_GAP) / 2:.1f},'
                 f'{bottom - 16:.1f}"];')
    lines.append(caption_node(fig, (len(cols) * (panel_w + PANEL_GAP) - PANEL_GAP) / 2, bottom - 34))
    lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"

