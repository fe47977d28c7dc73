"""Render query results with Graphviz."""
