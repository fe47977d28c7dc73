"""Render query results (subgraphs) as publication figures with Graphviz: SVG, PDF, PNG or DOT."""

from export.graphviz import FORMATS
from export.render import VIEWS, render, to_dot
from export.theme import THEMES

__all__ = ["FORMATS", "THEMES", "VIEWS", "render", "to_dot"]
