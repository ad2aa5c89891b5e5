"""Start-up checks that turn bad configuration into one clear line instead of a traceback."""

from __future__ import annotations

import socket
import sys
from typing import NoReturn

from pydantic import ValidationError

from backend.core.settings import Settings


class StartupError(Exception):
    """A configuration or environment problem found before serving; the message names the setting or file."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_settings() -> Settings:
    """Settings from the environment, or exit with the offending `APP_*` variable named."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid setting APP_{field.upper()}: {first['msg']}")


def ensure_port_free(host: str, port: int, *, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            message = f"port {port} on {host} is in use ({exc.strerror}); set {setting} to another port"
            raise StartupError(message) from exc
