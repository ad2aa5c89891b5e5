"""GET /metrics: the Prometheus text exposition, for admins or a scraper holding `APP_METRICS_TOKEN`."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response

from backend.api.deps import SessionDep, SettingsDep, TokenDep, get_current_user
from backend.core.metrics import render

router = APIRouter(tags=["operations"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Prometheus text format (requests, runs, LLM, sandbox, RAG, cleanup)."},
    401: {"description": "no or invalid token"},
    403: {"description": "signed in, but not an admin"},
    404: {"description": "metrics are disabled (APP_METRICS_ENABLED=false)"},
}


@router.get("/metrics", response_class=Response, responses=_RESPONSES)
def metrics(session: SessionDep, settings: SettingsDep, token: TokenDep) -> Response:
    """Admin only: send an admin's access token, or the static scrape token `APP_METRICS_TOKEN`."""
    if not settings.metrics_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are disabled")
    scrape_token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else ""
    if not (scrape_token and token and hmac.compare_digest(token.encode(), scrape_token.encode())):
        user = get_current_user(session, settings, token)
        if not user.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "metrics are for admins only")
    body, content_type = render()
    return Response(content=body, media_type=content_type)
