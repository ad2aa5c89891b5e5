"""Start the API server (uvicorn) with settings from APP_* variables."""

from __future__ import annotations

import uvicorn

from backend.core.startup import StartupError, ensure_port_free, fail, load_settings


def main() -> None:
    settings = load_settings()
    try:
        ensure_port_free(settings.host, settings.port, setting="APP_PORT")
    except StartupError as exc:
        fail(str(exc))
    uvicorn.run(
        "backend.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
