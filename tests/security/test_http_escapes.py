"""The escape suite's payloads, sent through the whole HTTP path of a real server, judged from outside.

Each payload of tests/integration/sandbox/test_escape_suite.py (imported, not copied) is smuggled into a chat
message; the scripted hostile model makes python_coder run it unchanged, so it meets the real route, agent
graph, coder loop, static policy and OS sandbox. The server's environment holds the secrets the payloads hunt
for. Containment is judged only by what an outsider can see: the canary file and the host's other files, its
listeners, a victim process, the answer, the steps, the conversation and every artifact the run produced, and
the server's own health afterwards.

Then two users at once: one runs CPU and memory hogs, the other quick queries. The quick ones finish within
limits, and neither user sees the other's files or variables.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.core.settings import Settings
from tests.hardening.hostile_model import smuggle
from tests.hardening.live import LiveServer, StreamedTurn, chat, live_server
from tests.hardening.tally import Tally
from tests.integration.sandbox.test_escape_suite import PAYLOADS, Host, _fill, _leftover_processes, host

__all__ = ["host"]

pytestmark = pytest.mark.slow

OUTPUT_MARKERS = ("FOUND", "CONNECTED", "RESOLVED", "ROOT", "RAW")
"""Printed by a payload only when it got through."""
PASSWD_LINE = "root:x:0:0"
QUICK_TURN_SECONDS = 20.0
"""A trivial query must finish within this while another user's hog runs (normally well under 2 s)."""
CODE_TIMEOUT_SECONDS = 5


@pytest.fixture(scope="module")
def server(host: Host, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module; its environment carries the host's secret, and so does data/jwt_secret."""
    data_dir = tmp_path_factory.mktemp("escapes") / "data"
    data_dir.mkdir()
    (data_dir / "jwt_secret").write_text(host.secret)
    yield from live_server(data_dir, APP_JWT_SECRET=host.secret, OPENAI_API_KEY=host.secret,
                           APP_OPENAI_API_KEY=host.secret, APP_CODE_TIMEOUT_SECONDS=str(CODE_TIMEOUT_SECONDS),
                           APP_CODE_MEMORY_MB="1024", APP_MAX_CONCURRENT_RUNS="3")


@pytest.fixture(scope="module")
def attacker(server: LiveServer) -> dict[str, str]:
    return server.sign_up("mallory")


def _everything_said(http: httpx.Client, reply: dict[str, Any]) -> str:
    """The answer, the steps, the stored conversation and the bytes of every artifact the run produced."""
    conversation = http.get(f"/api/conversations/{reply['conversation_id']}")
    run = http.get(f"/api/runs/{reply['run_id']}")
    parts = [json.dumps(reply), conversation.text, run.text]
    for artifact in [*reply["figures"], *reply["files"]]:
        parts.append(http.get(artifact["url"]).content.decode(errors="replace"))
    return "\n".join(parts)


def _printed(reply: dict[str, Any]) -> str:
    """What the payload's process printed to stdout, as the steps report it."""
    events = [e for step in reply["steps"] for e in step.get("detail", {}).get("events", [])]
    return "\n".join(e.get("stdout") or "" for e in events if e.get("type") == "output")


def _escaping_symlinks(work: Path) -> list[str]:
    found = []
    for path in work.rglob("*") if work.is_dir() else []:
        if path.is_symlink():
            target = Path(os.path.normpath(path.parent / path.readlink()))
            if not target.is_relative_to(work):
                found.append(f"{path} -> {target}")
    return found


@pytest.mark.parametrize(("name", "template"), PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_payload_is_contained_end_to_end(server: LiveServer, attacker: dict[str, str], host: Host, name: str,
                                         template: str, tally: Tally) -> None:
    tally.case("escape")
    settings = Settings(_env_file=None, data_dir=server.data_dir)  # type: ignore[call-arg]
    code = _fill(template.replace("{server_pid}", str(server.pid)), host, settings)
    canary_before = (host.canary_file.read_text(), host.canary_file.stat().st_mtime_ns)
    with server.client(attacker) as http:
        answered = http.post("/api/chat", json={"message": smuggle(code), "strategy": "react"})
        assert answered.status_code == 200, answered.text
        reply = answered.json()
        ran = [e for s in reply["steps"] for e in s.get("detail", {}).get("events", []) if e.get("type") == "code"]
        assert ran and ran[0]["code"] == code, "the payload did not reach the sandbox unchanged"
        seen = _everything_said(http, reply)
    outputs = [e for s in reply["steps"] for e in s.get("detail", {}).get("events", []) if e.get("type") == "output"]
    blocked = any((e.get("error") or "").startswith("PolicyViolation") for e in outputs)
    tally.case("escape: blocked by the static policy" if blocked else "escape: ran, contained by the OS layers")
    printed = _printed(reply)
    assert host.canary_text not in seen, "host file content leaked"
    assert host.secret not in seen, "server secret leaked"
    assert PASSWD_LINE not in seen, "/etc/passwd leaked"
    assert not [m for m in OUTPUT_MARKERS if m in printed], f"the payload reported success:\n{printed[-2000:]}"
    assert (host.canary_file.read_text(), host.canary_file.stat().st_mtime_ns) == canary_before
    for target in host.targets():
        assert not target.exists(), f"wrote outside the workdir: {target}"
    assert not host.received, f"host listener got {host.received!r}"
    assert host.victim.poll() is None, "host victim process was killed"
    assert _escaping_symlinks(server.data_dir / "sessions" / reply["conversation_id"] / "work") == []
    assert server.healthy(), f"server unhealthy after {name}:\n{server.log()[-3000:]}"
    deadline = time.monotonic() + 10
    while _leftover_processes(f"999.{host.marker}") and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker of a killed run is torn down in the background
    assert _leftover_processes(f"999.{host.marker}") == [], "a sandbox process outlived its worker"


# --- two users at once ---------------------------------------------------------------------------
CPU_HOG = "while True:\n    sum(range(10**6))"
MEMORY_HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))"
SNOOP = """import os
print('listing', sorted(os.listdir('.')))
print('var', 'hog_token' in dir())
for path in ('hog_secret.txt', '/sandbox/vars/hog_token.json'):
    try:
        print('read', path, open(path).read())
    except OSError as exc:
        print('refused', path, type(exc).__name__)
print('answer', 6 * 7)"""


def test_two_users_hog_and_query_at_once_without_seeing_each_other(server: LiveServer, tally: Tally) -> None:
    tally.case("isolation")
    hog_user, quick_user = server.sign_up("hogger"), server.sign_up("quick")
    token = secrets.token_hex(8)
    setup = chat(server, hog_user, {"message": smuggle(
        f"hog_token = {token!r}\nopen('hog_secret.txt', 'w').write(hog_token)\nprint('ready')")})
    assert setup["status"] == "done" and "ready" in setup["answer"], setup
    hogs = [StreamedTurn(server, hog_user, {"message": smuggle(code), "strategy": "react",
                                            "conversation_id": setup["conversation_id"] if n == 0 else None})
            for n, code in enumerate((CPU_HOG, MEMORY_HOG))]
    for hog in hogs:
        hog.start()
    for hog in hogs:
        assert hog.coding.wait(60), "the hog never reached the sandbox"
    started = time.monotonic()
    cpu_hog_running = hogs[0].is_alive()  # its program runs until the 5 s limit stops it
    snoop = chat(server, quick_user, {"message": smuggle(SNOOP)})
    quick_seconds = time.monotonic() - started
    arithmetic = chat(server, quick_user, {"message": smuggle("print('sum', sum(range(101)))")})
    both_seconds = time.monotonic() - started
    for hog in hogs:
        hog.join(CODE_TIMEOUT_SECONDS * 6)
    tally.figure("isolation", "quick_turn_s", quick_seconds)
    assert snoop["status"] == "done" and "answer 42" in snoop["answer"], snoop
    assert "sum 5050" in arithmetic["answer"], arithmetic
    assert both_seconds < QUICK_TURN_SECONDS, f"quick turns took {both_seconds:.1f} s next to the hogs"
    assert cpu_hog_running, "the CPU hog ended before the quick turns began: nothing ran at the same time"
    said = json.dumps(snoop)
    assert token not in said, said[max(0, said.find(token) - 500):said.find(token) + 100]
    assert "listing []" in snoop["answer"] and "var False" in snoop["answer"], snoop["answer"]
    assert "refused hog_secret.txt FileNotFoundError" in snoop["answer"], snoop["answer"]
    for hog in hogs:  # each hog was stopped by its limit, and said so
        done = hog.outcome()
        with server.client(hog_user) as http:
            run = http.get(f"/api/runs/{done['run_id']}").json()
        outputs = [e for s in run["trace"] for e in s.get("detail", {}).get("events", []) if e.get("type") == "output"]
        errors = " ".join(e.get("error") or "" for e in outputs)
        assert any(word in errors for word in ("TimeoutError", "MemoryError", "memory", "time limit")), errors
    with server.client(quick_user) as http:  # nor through the API
        assert http.get(f"/api/conversations/{setup['conversation_id']}").status_code == 404
        assert token not in http.get("/api/conversations").text
    with server.client(hog_user) as http:  # the hog user's own state survived its hogs
        again = http.post("/api/chat", json={"message": smuggle("print('token', hog_token)"), "strategy": "react",
                                             "conversation_id": setup["conversation_id"]}).json()
        assert f"token {token}" in again["answer"], again
    assert server.healthy()
