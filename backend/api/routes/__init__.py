"""HTTP routes, one module per resource; each stays short by leaning on deps.py and the repositories."""
