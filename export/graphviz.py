"""Running Graphviz: every layout under a time limit, and outputs made reproducible."""

from __future__ import annotations

import re
import shutil
import subprocess

from export.theme import FONT, SVG_FONTS
from lensgraph.errors import LensgraphError

FORMATS = ("svg", "pdf", "png", "dot")
TIMEOUT_S = 60.0
DPI = 200  # PNG resolution: sharp in print; Graphviz scales it down when a bitmap would be too large

_PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}Z?\)")


def layout(dot_text: str, fmt: str, positioned: bool, timeout_s: float = TIMEOUT_S, dpi: int = DPI) -> bytes:
    """Lay out and draw DOT text; `positioned` means the positions are in the text (neato -n2)."""
    engine = "neato" if positioned else "dot"
    exe = shutil.which(engine)
    if exe is None:
        raise LensgraphError(f"Graphviz ({engine}) is not installed: apt-get install graphviz (or brew install graphviz)")
    args = [exe, f"-T{fmt}"] + (["-n2"] if positioned else []) + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
    try:
        proc = subprocess.run(args, input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise LensgraphError(f"Graphviz ({engine}) did not finish the layout within {timeout_s:g} s; export fewer "
                             "layers or a pruned query, or allow more time (--timeout)") from None
    if proc.returncode != 0:
        raise LensgraphError(f"Graphviz ({engine}) failed: {proc.stderr.decode(errors='replace').strip()[:500]}")
    out = proc.stdout
    if fmt == "svg":  # name fallbacks for viewers without DejaVu Sans (metrics were computed with it)
        out = out.replace(f'font-family="{FONT}"'.encode(), f'font-family="{SVG_FONTS}"'.encode())
    if fmt == "pdf":  # cairo stamps the time; a fixed stamp of the same length keeps the xref offsets valid
        out = _PDF_DATE.sub(b"/CreationDate (D:19700101000000Z)", out)
    return out
