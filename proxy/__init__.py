"""driftgate's local LLM gateway: one endpoint, two dialects, many backends."""

__version__ = "0.1.0"
