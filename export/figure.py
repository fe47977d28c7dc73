"""What every figure shares: its options (title, caption, theme) and the DOT text that frames it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from export.escape import html, shown
from export.theme import FONT, LIGHT, Theme


@dataclass(frozen=True)
class Figure:
    title: str | None = None  # None: made from the subgraph's meta (prompt, target); "" for no title
    caption: str = ""  # set under the figure, wrapped
    theme: Theme = field(default=LIGHT)


def default_title(meta: dict[str, Any]) -> str:
    parts = []
    if meta.get("prompt"):
        parts.append(f"“{meta['prompt']}”")
    if meta.get("target") is not None:
        parts.append(f"→ {shown(meta['target'])!r}" if meta.get("prompt") else f"target {shown(meta['target'])!r}")
    if meta.get("model"):
        parts.append(f"· {meta['model']}")
    return " ".join(parts)


def _html_lines(text: str, width: int, size: int, bold: bool = False) -> str:
    lines = [html(line) for para in text.splitlines() for line in (textwrap.wrap(para, width) or [""])]
    body = "<BR/>".join(lines)
    body = f"<B>{body}</B>" if bold else body
    return f'<FONT POINT-SIZE="{size}">{body}</FONT>'


def header(fig: Figure, meta: dict[str, Any], graph_attrs: str = "") -> list[str]:
    """The opening lines of a figure's DOT text: fonts, colours and the title."""
    t = fig.theme
    title = default_title(meta) if fig.title is None else fig.title
    label = f"label=<{_html_lines(title, 110, 13, bold=True)}>, labelloc=t, " if title else ""
    return [
        "digraph lensgraph {",
        f'  graph [{label}fontname="{FONT}", fontcolor="{t.ink}", bgcolor="#ffffff", pad=0.2{graph_attrs}];',
        f'  node [fontname="{FONT}", fontsize=9, color="{t.ink}", fontcolor="{t.ink}", penwidth=0.8];',
        f'  edge [fontname="{FONT}", fontsize=7, arrowsize=0.5, color="{t.flow}"];',
    ]


def caption_cluster(fig: Figure) -> str:
    """For dot layouts: an invisible cluster around the whole figure whose label is the caption."""
    label = f"label=<{_html_lines(fig.caption, 140, 9)}>, " if fig.caption else 'label="", '  # not the title
    return f"  subgraph cluster_figure {{ graph [{label}labelloc=b, labeljust=l, penwidth=0];"


def caption_node(fig: Figure, x: float, y: float) -> str:
    """For fixed-position layouts: the caption as a text node centred on x, its top at y."""
    if not fig.caption:
        return ""
    label = _html_lines(fig.caption, 140, 9)
    lines = label.count("<BR/>") + 1
    return (f'  caption [shape=plaintext, class="caption", label=<{label}>, '
            f'pos="{x:.1f},{y - 6 * lines - 2:.1f}", width=0, height=0, margin=0];')
