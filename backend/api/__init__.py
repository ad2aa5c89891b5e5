"""The HTTP API: app factory, dependencies, routes and request/response schemas (the only room importing FastAPI)."""
