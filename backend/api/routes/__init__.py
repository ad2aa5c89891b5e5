"""api/routes room."""
