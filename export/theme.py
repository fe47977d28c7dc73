"""Colours, fonts and line widths of the figures; two themes: light (screen) and print (greyscale).

Both fill ramps fall monotonically in lightness from rank 1 to rank > 1000, so a figure keeps its meaning
when printed in black and white.
"""

from __future__ import annotations

from dataclasses import dataclass

FONT = "DejaVu Sans"  # installed with Graphviz nearly everywhere; SVGs name fallbacks after it
SVG_FONTS = "'DejaVu Sans',Verdana,Arial,sans-serif"

# Upper bounds of the target-rank classes that colour a node (ranks are 1-based).
RANK_BINS: tuple[tuple[int, str], ...] = (
    (1, "1"), (5, "2–5"), (20, "6–20"), (100, "21–100"), (1000, "101–1000"), (10**12, "> 1000"),
)


@dataclass(frozen=True)
class Theme:
    name: str
    ramp: tuple[str, ...]  # one fill per RANK_BINS class, darkest first
    no_target: str  # fill of nodes without a target rank (neurons, other queries' nodes)
    ink: str  # text, borders
    muted: str  # secondary text
    attention: str  # key/value (attention) edges
    flow: str  # other non-residual edges (read, query)
    grey_dark: float  # residual edge lightness at the lowest entropy of the figure (0 = black)
    grey_light: float  # ... and at the highest
    cluster_fill: str
    block_fill: str

    def fill(self, rank: int | None) -> str:
        if rank is None:
            return self.no_target
        for (bound, _), colour in zip(RANK_BINS, self.ramp):
            if rank <= bound:
                return colour
        return self.ramp[-1]

    def text_on(self, fill: str) -> str:
        """Black or white text, whichever reads on this fill."""
        r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
        return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else self.ink

    def grey(self, level: float) -> str:
        """A grey for a residual edge; level 0 = lowest entropy in the figure (darkest), 1 = highest."""
        v = self.grey_dark + (self.grey_light - self.grey_dark) * min(1.0, max(0.0, level))
        return "#" + f"{round(v * 255):02x}" * 3


LIGHT = Theme(
    name="light",
    ramp=("#253494", "#2c7fb8", "#41b6c4", "#7fcdbb", "#c7e9b4", "#ffffcc"),  # ColorBrewer YlGnBu
    no_target="#ffffff", ink="#222222", muted="#666666", attention="#d95f02", flow="#555555",
    grey_dark=0.2, grey_light=0.78, cluster_fill="#f7f7f7", block_fill="#ffffff",
)
PRINT = Theme(
    name="print",
    ramp=("#252525", "#525252", "#737373", "#969696", "#cccccc", "#f7f7f7"),  # ColorBrewer Greys
    no_target="#ffffff", ink="#000000", muted="#444444", attention="#000000", flow="#444444",
    grey_dark=0.15, grey_light=0.7, cluster_fill="#ffffff", block_fill="#ffffff",
)
THEMES: dict[str, Theme] = {t.name: t for t in (LIGHT, PRINT)}


def edge_width(score: float | None) -> float:
    """Line width of an edge whose score (attention, contribution share) is in [0, 1]."""
    s = min(1.0, max(0.0, float(score or 0.0)))
    return round(0.4 + 3.6 * s, 2)
