"""Self-hosted agentic analysis server."""

__version__ = "0.1.0"
