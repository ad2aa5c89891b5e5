"""Reliability suite: faults (provider, server, sandbox worker, disk, vector store) and load.

Live tests start their own uvicorn subprocess; nothing reaches beyond loopback.
"""

from __future__ import annotations

from tests.hardening.guard import _loopback_only, _no_model_requests
from tests.hardening.tally import tally
from tests.unit.api.conftest import agent, app, build_app, client, documents
from tests.unit.conftest import app_factory

__all__ = ["_loopback_only", "_no_model_requests", "agent", "app", "app_factory", "build_app", "client",
           "documents", "tally"]
