"""The flow-graph figure of a subgraph, after VISIT: flow left to right, a cluster per layer and per
sub-block, each node labelled with its top token and filled by the target token's rank.

Small graphs are laid out by `dot`. Large ones (dot's time grows super-linearly) get positions computed
here, layer and stage on x and order on y, with the cluster boxes drawn from their computed bounds, for
`neato -n2` to draw as they are.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from export.escape import clipped, dot_lines, dot_string, html, shown
from export.figure import Figure, caption_cluster, caption_node, header
from export.theme import RANK_BINS, Theme, edge_width
from lensgraph.subgraph import Subgraph

# Left-to-right order of the kinds within a layer, and the sub-block each belongs to (None: the residual
# stream, drawn in the layer's cluster outside the sub-blocks). `mlp` and `attn_o` are Neuron kinds.
STAGES: tuple[tuple[str, str | None], ...] = (
    ("resid_pre", None), ("ln1", "attention"), ("qkv", "attention"), ("key", "attention"),
    ("value", "attention"), ("query", "attention"), ("head", "attention"), ("concat", "attention"),
    ("attn_o", "attention"), ("attn_out", "attention"), ("resid_mid", None), ("ln2", "MLP"), ("mlp", "MLP"),
    ("mlp_out", "MLP"), ("resid_post", None), ("final", None),
)
STAGE = {kind: i for i, (kind, _) in enumerate(STAGES)}
BLOCK = dict(STAGES)
RESIDUAL = {"resid_pre", "resid_mid", "resid_post", "final"}
MEMORY = {"key", "value"}
ACCUMULATION_EDGES = {"residual", "layer", "norm", "sum"}  # drawn grey, darker for lower entropy
ATTENTION_EDGES = {"key", "value"}
CONSTANT_EDGES = {"norm", "read", "query", "layer"}  # score is always 1: a plain width, not "strong"

LARGE_NODES = 600  # above this many nodes (or LARGE_EDGES edges) positions are computed here
LARGE_EDGES = 1500
COL, LAYER_GAP, ROW = 104.0, 46.0, 32.0  # points
NODE_W, NODE_H = 88.0, 26.0


def is_large(graph: Subgraph) -> bool:
    return len(graph.nodes) > LARGE_NODES or len(graph.edges) > LARGE_EDGES


def order(node: dict[str, Any]) -> tuple:
    """Sort key: layer, then stage within the layer, then head and source position."""
    layer, kind = node.get("layer"), node.get("kind") or ""
    num = lambda v: v if isinstance(v, (int, float)) else -1  # noqa: E731
    return (layer is None, num(layer), STAGE.get(kind, len(STAGES)), kind, num(node.get("head")),
            num(node.get("position")), num(node.get("idx")), node["uid"])


def _tok(token: str | None) -> str:
    return f"'{shown(token)}'"


def _sub(node: dict[str, Any]) -> str:
    """The small second line of a label: what the node is."""
    kind = node.get("kind") or "node"
    if kind in MEMORY:
        return f"{kind} h{node.get('head')} · s{node.get('position')}"
    if kind in ("query", "head"):
        return f"{kind} h{node.get('head')}"
    if kind in ("mlp", "attn_o"):
        sign = {1: " +", -1: " −"}.get(node.get("sign"), "")  # the sign of its activation this pass
        return f"{'MLP' if kind == 'mlp' else 'W_O'} n{node.get('idx')}{sign}"
    return kind.replace("_", " ")


def _main(node: dict[str, Any]) -> str:
    """The label's main line: the top token; memory keys/values show the source token that wrote them."""
    if node.get("kind") in MEMORY and node.get("source_token") is not None:
        return shown(node["source_token"])
    top = node.get("top_tokens") or []
    return shown(top[0]) if top else node["uid"].rsplit("/", 1)[-1]


def _pairs(tokens: list[str] | None, probs: list[float] | None) -> str:
    return ", ".join(f"{_tok(t)} {p:.3g}" for t, p in zip(tokens or [], probs or []))


def tooltip(node: dict[str, Any], target: str | None) -> list[str]:
    kind = node.get("kind") or "node"
    layer = node.get("layer")
    where = "final (model output)" if kind == "final" else (f"layer {layer}" if layer is not None else "")
    block = BLOCK.get(kind)
    lines = [" · ".join(x for x in (where, _sub(node), block or ("residual stream" if kind in RESIDUAL else ""))
                        if x)]
    if kind in MEMORY:
        lines.append(f"written by source token {_tok(node.get('source_token'))} at position {node.get('position')}")
    if node.get("top_tokens"):
        lines.append("top: " + _pairs(node["top_tokens"], node.get("top_probs")))
    if node.get("bottom_tokens"):
        lines.append("bottom: " + _pairs(node["bottom_tokens"], node.get("bottom_probs")))
    if node.get("target_rank") is not None:
        name = f"target {_tok(target)}" if target is not None else "target"
        lines.append(f"{name}: rank {node['target_rank']}, p {float(node.get('target_prob') or 0):.3g}")
    stats = [f"entropy {node['entropy']:.3g} nats" if node.get("entropy") is not None else "",
             f"norm {node['norm']:.3g}" if node.get("norm") is not None else ""]
    if any(stats):
        lines.append(" · ".join(s for s in stats if s))
    lines.append(node["uid"])
    return lines


def legend(theme: Theme, target: str | None) -> str:
    name = f"target {_tok(target)}" if target is not None else "the target token"
    rows = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Fill: rank of {html(name)}</B></TD></TR>',
            '<TR><TD COLSPAN="2" ALIGN="LEFT">in the node\'s logit lens</TD></TR>']
    for (_, text), colour in zip(RANK_BINS, theme.ramp):
        rows.append(f'<TR><TD BGCOLOR="{colour}" WIDTH="16" HEIGHT="10" BORDER="1"></TD><TD ALIGN="LEFT">{html(text)}</TD></TR>')
    rows.append(f'<TR><TD BGCOLOR="{theme.no_target}" WIDTH="16" HEIGHT="10" BORDER="1"></TD>'
                '<TD ALIGN="LEFT">no target rank</TD></TR>')
    rows += [f'<TR><TD COLSPAN="2" ALIGN="LEFT">{line}</TD></TR>' for line in (
        "Edge width: score (attention,", "contribution share)",
        f'<FONT COLOR="{theme.attention}">━</FONT> attention (key, value)',
        f'<FONT COLOR="{theme.grey(0.0)}">━</FONT> residual / accumulation:',
        "darker = lower entropy of its source")]
    table = f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">{"".join(rows)}</TABLE>'
    return f'  legend [shape=plaintext, class="legend", fontsize=8, margin=0, label=<{table}>'


def _node_line(node: dict[str, Any], index: dict[str, str], theme: Theme, target: str | None,
               large: bool, pos: tuple[float, float] | None) -> str:
    kind = node.get("kind") or ""
    fill = theme.fill(node.get("target_rank"))
    main = clipped(_main(node), 11 if large else 18)
    italic = kind in MEMORY
    main_html = f"<I>{html(main)}</I>" if italic else html(main)
    label = f'<{main_html}<BR/><FONT POINT-SIZE="6.5">{html(_sub(node))}</FONT>>'
    shape = "ellipse" if kind in MEMORY or kind in ("mlp", "attn_o") else "box"
    style = "filled,bold" if kind in RESIDUAL else "filled"
    if shape == "box":
        style = "rounded," + style
    attrs = [f"label={label}", f"shape={shape}", f'style="{style}"', f'fillcolor="{fill}"',
             f'fontcolor="{theme.text_on(fill)}"', f"tooltip={dot_lines(tooltip(node, target))}", 'class="state"']
    if large:
        attrs += [f'pos="{pos[0]:.1f},{pos[1]:.1f}"', f"width={NODE_W / 72:.3f}", f"height={NODE_H / 72:.3f}",
                  "fixedsize=true"]
    else:
        attrs += ["margin=\"0.06,0.03\"", "height=0.3"]
    return f"    {index[node['uid']]} [{', '.join(attrs)}];"


def _edge_line(edge: dict[str, Any], index: dict[str, str], theme: Theme, grey_level: dict[str, float],
               peak: dict[str, float], large: bool) -> str:
    kind = edge.get("kind") or ""
    score = edge.get("score")
    width = 1.0 if kind in CONSTANT_EDGES else edge_width(abs(float(score or 0)) / peak.get(kind, 1.0))
    if kind in ACCUMULATION_EDGES:
        colour = theme.grey(grey_level.get(edge["source"], 0.5))
    elif kind in ATTENTION_EDGES:
        colour = theme.attention
    else:
        colour = theme.flow
    tip = [f"{kind}: score {float(score or 0):.3g}" + (f" (rank {edge['rank']})" if edge.get("rank") else "")
           + (f", coef {float(edge['coef']):.3g}" if edge.get("coef") is not None else ""),
           f"{edge['source']} → {edge['target']}"]
    attrs = [f'color="{colour}"', f"penwidth={width}", f"tooltip={dot_lines(tip)}"]
    if not large and kind in ("residual", "layer"):
        attrs.append("weight=8")  # keep the residual stream a straight line
    return f"  {index[edge['source']]} -> {index[edge['target']]} [{', '.join(attrs)}];"


def _grey_levels(graph: Subgraph) -> dict[str, float]:
    """Each node's entropy scaled to the figure's range: 0 = lowest (darkest edge), 1 = highest."""
    ent = {n["uid"]: float(n["entropy"]) for n in graph.nodes if n.get("entropy") is not None}
    if not ent:
        return {}
    lo, hi = min(ent.values()), max(ent.values())
    return {u: (e - lo) / (hi - lo) if hi > lo else 0.5 for u, e in ent.items()}


def _peaks(graph: Subgraph) -> dict[str, float]:
    """Edge kinds whose scores are not shares in [0, 1] (e.g. ACTIVATES |coef|): their largest score, so
    that their widths are relative to the strongest edge of the kind in the figure."""
    peak: dict[str, float] = defaultdict(float)
    for e in graph.edges:
        peak[e.get("kind") or ""] = max(peak[e.get("kind") or ""], abs(float(e.get("score") or 0.0)))
    return {k: v for k, v in peak.items() if v > 1.0}


def _group(nodes: list[dict[str, Any]]) -> dict[Any, dict[str | None, list[dict[str, Any]]]]:
    """layer -> sub-block -> nodes, in figure order."""
    groups: dict[Any, dict[str | None, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for node in nodes:
        groups[node.get("layer")][BLOCK.get(node.get("kind") or "")].append(node)
    return groups


def flow_dot(graph: Subgraph, fig: Figure) -> str:
    """Deterministic DOT text of the flow figure (positions included when the graph is large)."""
    theme, target = fig.theme, graph.meta.get("target")
    nodes = sorted(graph.nodes, key=order)
    index = {n["uid"]: dot_string(n["uid"]) for n in nodes}  # the uid is the node's name (its SVG <title>)
    large = is_large(graph)
    pos = _positions(nodes) if large else {}
    attrs = (', splines=line, outputorder=edgesfirst' if large
             else ', rankdir=LR, newrank=true, nodesep=0.08, ranksep=0.22, outputorder=edgesfirst')
    lines = header(fig, graph.meta, attrs)
    if not large:
        lines.append(caption_cluster(fig))
    boxes = _cluster_boxes(nodes, pos) if large else {}
    for layer, blocks in _group(nodes).items():
        inner: list[str] = []
        for block, members in blocks.items():
            body = [_node_line(n, index, theme, target, large, pos.get(n["uid"])) for n in members]
            if block is None or layer is None:
                inner += body
                continue
            inner.append(f'   subgraph "cluster_L{layer}_{block}" {{ graph [label="{block}", labelloc=t, labeljust=l, fontsize=8, '
                         f'style="filled,dashed", fillcolor="{theme.block_fill}", color="{theme.muted}"'
                         f'{boxes.get((layer, block), "")}];')
            inner += body + ["   }"]
        if layer is None:
            lines += inner
            continue
        lines.append(f'  subgraph "cluster_L{layer}" {{ graph [label="Layer {layer}", labelloc=t, labeljust=l, fontsize=11, style=filled, '
                     f'fillcolor="{theme.cluster_fill}", color="{theme.muted}"{boxes.get((layer, None), "")}];')
        lines += inner + ["  }"]
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    lines.append(legend(theme, target) + (f', pos="{max(xs) + 150:.1f},{max(ys) - 60:.1f}"];' if large else "];"))
    if not large and nodes:
        lines.append(f"  {index[nodes[-1]['uid']]} -> legend [style=invis];")  # the legend right of the flow
    grey = _grey_levels(graph)
    peak = _peaks(graph)
    for edge in sorted(graph.edges, key=lambda e: (e["source"], e["target"], e.get("kind") or "")):
        lines.append(_edge_line(edge, index, theme, grey, peak, large))
    if large:
        lines.append(caption_node(fig, (min(xs) + max(xs)) / 2, min(ys) - 60))
    else:
        lines.append("  }")
    lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"


def _positions(nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Layer and stage on x (only the stages present get a column), order within the column on y."""
    columns: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes:  # already in figure order
        key = order(node)
        columns[key[:4]].append(node)
    pos, x, last_layer = {}, 0.0, None
    for key in columns:  # insertion order is figure order
        layer = key[:2]
        if last_layer is not None:
            x += COL + (LAYER_GAP if layer != last_layer else 0.0)
        last_layer = layer
        members = columns[key]
        for i, node in enumerate(members):
            pos[node["uid"]] = (x, ((len(members) - 1) / 2 - i) * ROW)
    return pos


def _cluster_boxes(nodes: list[dict[str, Any]], pos: dict[str, tuple[float, float]]) -> dict[tuple, str]:
    """bb and label position of every layer and sub-block cluster, from its nodes' positions."""
    spans: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for node in nodes:
        layer = node.get("layer")
        if layer is None:
            continue
        spans[(layer, None)].append(pos[node["uid"]])
        block = BLOCK.get(node.get("kind") or "")
        if block is not None:
            spans[(layer, block)].append(pos[node["uid"]])
    boxes = {}
    for key, points in spans.items():
        pad = 26.0 if key[1] is None else 10.0
        x0 = min(p[0] for p in points) - NODE_W / 2 - pad
        x1 = max(p[0] for p in points) + NODE_W / 2 + pad
        y0 = min(p[1] for p in points) - NODE_H / 2 - pad
        y1 = max(p[1] for p in points) + NODE_H / 2 + pad + (14.0 if key[1] is None else 6.0)
        boxes[key] = f', bb="{x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f}", lp="{(x0 + x1) / 2:.1f},{y1 - 9:.1f}"'
    return boxes
