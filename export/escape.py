"""Token text made visible and safe for DOT: whitespace shown, quotes and angle brackets escaped.

Tokens are shown as the model sees them: ' Paris' keeps its space, but a token that is only whitespace
(' ', '\\n') would be an invisible label, so whitespace characters get visible stand-ins.
"""

from __future__ import annotations

import unicodedata

_VISIBLE = {"\n": "↵", "\r": "␍", "\t": "⇥", " ": "␣"}
MAX_LABEL = 18  # characters of a token in a node label; tooltips keep the whole text


def shown(token: str | None) -> str:
    """A token as it is printed: whitespace-only tokens spelled out, control characters as \\xNN."""
    if token is None:
        return "∅"
    if token == "":
        return "''"
    out = []
    blank = token.strip() == ""
    for ch in token:
        if ch in _VISIBLE and (blank or ch != " "):
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or (ch.isspace() and ch != " "):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def clipped(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: str) -> str:
    # Graphviz reads backslash escapes (\n, \N) and character entities ('&amp;') in strings: double
    # the backslash and write '&' as an entity so that a token's text comes out exactly as it is.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def dot_string(text: str) -> str:
    """A DOT double-quoted string showing `text` literally."""
    return '"' + _esc(text) + '"'


def dot_lines(lines: list[str]) -> str:
    """Several lines as one DOT string (for tooltips), joined by Graphviz's line break."""
    return '"' + "\\n".join(_esc(line) for line in lines) + '"'


def html(text: str) -> str:
    """Text inside a Graphviz HTML-like label (an XML fragment)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
