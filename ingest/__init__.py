"""Ingest: run forward passes and turn each into the full, annotated flow graph (imports torch)."""
