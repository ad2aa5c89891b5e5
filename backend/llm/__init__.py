"""LLM layer: provider factory, failover chain, health and the packaged embedded model (only room talking to models)."""
