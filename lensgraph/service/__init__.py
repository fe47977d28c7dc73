"""The HTTP query service (`lensgraph serve`): FastAPI over a read-only store and the job catalog."""

from lensgraph.service.app import create_app, is_loopback

__all__ = ["create_app", "is_loopback"]
