"""lensgraph: forward passes of language models as queryable flow graphs."""

__version__ = "0.1.0"
