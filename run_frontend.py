"""Serve the static UI from frontend/ and tell it where the backend is (via /config.js)."""

from __future__ import annotations

import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from backend.core.startup import StartupError, ensure_port_free, fail, load_settings

FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"


class FrontendHandler(SimpleHTTPRequestHandler):
    backend_url = ""

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.js":
            body = f"window.APP_CONFIG = {json.dumps({'backendUrl': self.backend_url})};\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


def main() -> None:
    settings = load_settings()
    try:
        ensure_port_free(settings.host, settings.frontend_port, setting="APP_FRONTEND_PORT")
    except StartupError as exc:
        fail(str(exc))
    FrontendHandler.backend_url = settings.resolved_backend_url
    handler = functools.partial(FrontendHandler, directory=str(FRONTEND_DIR))
    server = ThreadingHTTPServer((settings.host, settings.frontend_port), handler)
    print(f"UI on http://{settings.host}:{settings.frontend_port} -> backend {settings.resolved_backend_url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
