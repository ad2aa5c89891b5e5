"""Faults injected into a running system, and what must survive each one.

- a provider fails before its first chunk (failover to the next) or in the middle of a stream (a clean error
  event: never an answer spliced from two models), and when every provider fails: the turn, meaning the user's
  message and its run record, is never lost, and the next turn works;
- the sandbox worker is SIGKILLed mid-run: the run ends with a clear error, the next turn gets a fresh worker
  with the session's saved variables;
- the server is SIGKILLed mid-run: after a restart the conversation is intact, the run is reported interrupted
  and the conversation carries on;
- the disk fills while variables are saved (the catalog write fails with ENOSPC, or the child's file writes hit
  the file-size limit): the run's result still arrives with a clear warning, the catalog is never corrupt and no
  partial file is left;
- a process indexing documents into Chroma is SIGKILLed: a fresh process sees every committed chunk, and nothing
  of the document it was writing is visible.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from backend.agents.service import AgentService
from backend.core.settings import PROJECT_ROOT, Settings
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry
from backend.sandbox.manager import SandboxManager
from backend.storage import variables as variables_module
from backend.tools.registry import ToolRegistry
from tests.hardening.hostile_model import smuggle
from tests.hardening.inproc import hardened_settings, inprocess_app, sign_up
from tests.hardening.live import LiveServer, StreamedTurn, chat, live_server, processes_mentioning
from tests.hardening.tally import Tally

CATEGORY = "faults"
LONG_PROGRAM = "import time\nfor _ in range(600):\n    time.sleep(0.1)\nprint('finished')"
"""A minute of sleeping in the sandbox: long enough to kill something under it."""
STARTED_MARKER = "started.marker"
MARKED_LONG_PROGRAM = f"open({STARTED_MARKER!r}, 'w').close()\n{LONG_PROGRAM}"
"""Says when the worker really runs it: killed earlier, the worker would just be replaced before the run."""


# --- provider faults (in-process, real agent graph) --------------------------------------------------
class BrokenProvider(ScriptedChatModel):
    """Streams `before` chunks of its reply, then raises; `times` limits how many calls break."""

    before: int = 0
    times: int = 1_000_000
    broken: int = 0

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        if self.broken >= self.times:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            return
        self.broken += 1
        for n, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if n >= self.before:
                break
            yield chunk
        raise ConnectionError("provider connection reset mid-stream" if self.before else "provider refused")


def _chain(*providers: tuple[str, ScriptedChatModel]) -> FailoverChatModel:
    return FailoverChatModel(entries=[ProviderEntry(name, model) for name, model in providers],
                             registry=HealthRegistry(), max_retries=0, failure_threshold=100)


def _chat_stream(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> list[tuple[str, Any]]:
    events = []
    with client.stream("POST", "/api/chat?stream=true", json=body, headers=headers) as reply:
        assert reply.status_code == 200, reply.read()
        event = ""
        for line in reply.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line.removeprefix("data:").strip())))
    return events


def _provider_world(tmp_path: Path, llm: FailoverChatModel) -> Any:
    settings = hardened_settings(tmp_path / "data")
    agent = AgentService(settings=settings, llm=llm, tools=ToolRegistry([]))
    return inprocess_app(settings, agent)


def test_provider_failing_before_its_first_chunk_fails_over(tmp_path: Path, tally: Tally) -> None:
    tally.case(CATEGORY)
    backup = ScriptedChatModel(replies=["Hello from the backup provider."], cycle=True)
    broken = BrokenProvider(replies=["never"], cycle=True, before=0)
    with _provider_world(tmp_path, _chain(("primary", broken), ("backup", backup))) as (_app, client):
        headers, _ = sign_up(client, "alice")
        events = _chat_stream(client, headers, {"message": "hello"})
        done = events[-1][1]
        assert events[-1][0] == "done" and done["status"] == "done", events[-3:]
        answer = next(data["text"] for event, data in events if event == "final_answer")
        assert answer == "Hello from the backup provider." and broken.broken == 1
        detail = client.get(f"/api/conversations/{done['conversation_id']}", headers=headers).json()
        assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", "hello"), ("assistant", answer)]


def test_provider_failing_mid_stream_ends_the_turn_cleanly_and_keeps_it(tmp_path: Path, tally: Tally) -> None:
    tally.case(CATEGORY)
    backup = ScriptedChatModel(replies=["The backup would have said this."], cycle=True)
    flaky = BrokenProvider(replies=["The primary provider starts an answer and then dies."], cycle=True, before=2,
                           chunk_size=8, times=1)
    with _provider_world(tmp_path, _chain(("primary", flaky), ("backup", backup))) as (_app, client):
        headers, _ = sign_up(client, "alice")
        events = _chat_stream(client, headers, {"message": "hello"})
        kinds = [event for event, _ in events]
        assert kinds[-2:] == ["error", "done"] and events[-1][1]["status"] == "failed", events[-4:]
        assert "final_answer" not in kinds and backup.calls == [], "an answer was spliced from a second provider"
        assert "primary" in events[-2][1]["message"] and "mid-stream" in events[-2][1]["message"], events[-2]
        conversation_id, run_id = events[-1][1]["conversation_id"], events[-1][1]["run_id"]
        run = client.get(f"/api/runs/{run_id}", headers=headers).json()
        assert run["status"] == "failed" and "mid-stream" in run["error"], run
        # the turn is kept, and the conversation goes on
        again = client.post("/api/chat", headers=headers, json={"message": "hello", "conversation_id": conversation_id})
        assert again.json()["status"] == "done", again.text
        detail = client.get(f"/api/conversations/{conversation_id}", headers=headers).json()
        assert [m["role"] for m in detail["messages"]] == ["user", "user", "assistant"]
        assert [r["status"] for r in detail["runs"]] == ["failed", "done"]


def test_every_provider_failing_is_a_clean_error_and_the_turn_is_kept(tmp_path: Path, tally: Tally) -> None:
    tally.case(CATEGORY)
    chain = _chain(("one", BrokenProvider(replies=["x"], cycle=True)),
                   ("two", BrokenProvider(replies=["y"], cycle=True)))
    with _provider_world(tmp_path, chain) as (_app, client):
        headers, _ = sign_up(client, "alice")
        reply = client.post("/api/chat", headers=headers, json={"message": "hello"}).json()
        assert reply["status"] == "failed" and "one" in reply["error"] and "two" in reply["error"], reply
        detail = client.get(f"/api/conversations/{reply['conversation_id']}", headers=headers).json()
        assert [m["content"] for m in detail["messages"]] == ["hello"]


# --- the sandbox worker and the server killed mid-run (live server) -------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from live_server(tmp_path_factory.mktemp("faults") / "data", APP_CODE_TIMEOUT_SECONDS="120")


def _wait_for(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _outputs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for step in run["trace"] for e in step.get("detail", {}).get("events", []) if e.get("type") == "output"]


@pytest.mark.slow
def test_sandbox_worker_killed_mid_run_gives_a_clear_error_and_a_fresh_worker(server: LiveServer,
                                                                              tally: Tally) -> None:
    tally.case(CATEGORY)
    headers = server.sign_up("worker-victim")
    first = chat(server, headers, {"message": smuggle("kept = 41\nprint('saved', kept)"), "conversation_id": None})
    conversation_id = first["conversation_id"]
    assert "saved 41" in first["answer"], first
    session = f"/sessions/{conversation_id}/"
    turn = StreamedTurn(server, headers, {"message": smuggle(MARKED_LONG_PROGRAM), "strategy": "react",
                                          "conversation_id": conversation_id})
    turn.start()
    assert turn.coding.wait(60)
    session_dir = server.data_dir / "sessions" / conversation_id
    _wait_for(lambda: list(session_dir.rglob(STARTED_MARKER)), 30, "the program to start in the worker")
    doomed = _wait_for(lambda: processes_mentioning(session), 30, "the sandbox worker")
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    turn.join(60)
    assert not turn.is_alive() and turn.error is None, turn.error
    assert turn.events[-1][0] == "done", turn.events[-3:]
    with server.client(headers) as http:
        run = http.get(f"/api/runs/{turn.ids()[1]}").json()
    errors = " ".join(e.get("error") or "" for e in _outputs(run))
    assert "WorkerCrashed" in errors and "killed" in errors, errors
    assert "the sandbox worker crashed" in (run["output"] or ""), run["output"]  # told, not just traced
    again = chat(server, headers, {"message": smuggle("print('fresh', kept + 1)"),
                                  "conversation_id": conversation_id})
    assert "fresh 42" in again["answer"], again  # a new worker, with the saved variable restored
    assert not set(processes_mentioning(session)) & set(doomed)
    assert server.healthy()


@pytest.mark.slow
def test_server_killed_mid_run_keeps_the_conversation_and_reports_the_run(server: LiveServer, tally: Tally) -> None:
    tally.case(CATEGORY)
    headers = server.sign_up("crash-victim")
    question = smuggle(LONG_PROGRAM, note="Run the long simulation")
    turn = StreamedTurn(server, headers, {"message": question, "strategy": "react"})
    turn.start()
    assert turn.coding.wait(60)
    conversation_id, run_id = turn.ids()
    _wait_for(lambda: processes_mentioning(f"/sessions/{conversation_id}/"), 30, "the sandbox worker")
    server.sigkill()
    turn.join(30)
    _wait_for(lambda: not processes_mentioning(str(server.data_dir)), 15, "the sandbox to die with the server")
    server.start()  # same data dir, as after a crash
    with server.client(headers) as http:
        detail = http.get(f"/api/conversations/{conversation_id}").json()
        run = http.get(f"/api/runs/{run_id}").json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", question)], detail["messages"]
    assert run["status"] == "failed" and run["error"].startswith("interrupted"), run
    assert run["finished_at"] is not None
    later = chat(server, headers, {"message": smuggle("print('carrying on')"), "conversation_id": conversation_id})
    assert later["status"] == "done" and "carrying on" in later["answer"], later
    rows = server.query("SELECT role FROM messages WHERE conversation_id = ? ORDER BY created_at", conversation_id)
    assert [r[0] for r in rows] == ["user", "user", "assistant"]


# --- disk full while saving variables (SandboxManager) ---------------------------------------------------
@pytest.fixture
async def manager(settings: Settings) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": 0}))
    yield mgr
    await mgr.shutdown()


class _FullDiskOs:
    """`os` for backend.storage.variables, with every write through `os.fdopen(..., "wb")` failing ENOSPC."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = os.fdopen(fd, mode, *args, **kwargs)
        if "w" not in mode:
            return handle

        class Full:
            def __enter__(self) -> Full:
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

            def write(self, data: bytes) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return Full()


def _vars_dir_state(manager: SandboxManager, session: str) -> tuple[bytes, list[str]]:
    root = manager.variables(session).root
    return (root / "catalog.json").read_bytes(), sorted(p.name for p in root.iterdir())


async def test_disk_full_while_writing_the_catalog(manager: SandboxManager, settings: Settings, tally: Tally,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tally.case(CATEGORY)
    first = await manager.run(session_id="full", code="kept = 41")
    assert first.ok, first
    before = _vars_dir_state(manager, "full")
    monkeypatch.setattr(variables_module, "os", _FullDiskOs())
    result = await manager.run(session_id="full", code="lost = [1, 2, 3]\nprint('computed', sum(lost))")
    monkeypatch.undo()
    assert result.ok and result.stdout == "computed 6\n", result  # the run's answer is not lost
    assert result.warnings and "No space left on device" in result.warnings[0], result.warnings
    assert "Warning:" in result.observation() and "not saved" in result.stderr
    catalog, names = _vars_dir_state(manager, "full")
    assert catalog == before[0], "the catalog changed although it could not be written"
    assert not [n for n in names if n.endswith(".tmp")], names
    assert [m.name for m in manager.variables("full").catalog()] == ["kept"]
    await manager.shutdown()  # a fresh worker: restores exactly what the catalog says
    fresh = SandboxManager(settings=manager.settings)
    try:
        later = await fresh.run(session_id="full", code="print(kept, 'lost' in dir())")
        assert later.stdout == "41 False\n", later
    finally:
        await fresh.shutdown()


async def test_disk_full_while_the_child_writes_a_variable(manager: SandboxManager, tally: Tally) -> None:
    tally.case(CATEGORY)
    assert (await manager.run(session_id="fsize", code="kept = 41")).ok
    code = ("import resource\nimport numpy as np\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # what a full disk does to the next write\n"
            "big = np.arange(100_000)\nprint('computed', int(big.sum()))")
    result = await manager.run(session_id="fsize", code=code, enforce_policy=False)  # fault injection, not escape
    assert result.ok and result.stdout == "computed 4999950000\n", result
    assert any("`big` was not saved (OSError" in w for w in result.warnings), result.warnings
    root = manager.variables("fsize").root
    assert sorted(p.name for p in root.iterdir()) == ["catalog.json", "kept.json"], "partial files were left"
    assert [m.name for m in manager.variables("fsize").catalog()] == ["kept"]
    json.loads((root / "catalog.json").read_text())


# --- Chroma: a writer killed mid-ingest, read back by a fresh process ------------------------------------
RAG_COMMON = textwrap.dedent('''
    import hashlib, json, sys, time
    from pathlib import Path
    from langchain_core.embeddings import Embeddings
    from backend.core.settings import Settings
    from backend.storage.vectors import build_rag_store

    class HashEmbeddings(Embeddings):
        """Deterministic 16-dim vectors (no model download); slow enough that a kill lands mid-ingest."""
        def embed_documents(self, texts):
            time.sleep(0.05)
            return [self.embed_query(t) for t in texts]
        def embed_query(self, text):
            digest = hashlib.sha256(text.encode()).digest()
            return [b / 255.0 + 0.01 for b in digest[:16]]

    settings = Settings(_env_file=None, data_dir=Path(sys.argv[1]), jwt_secret="x" * 48, rag_chunk_size=120,
                        rag_chunk_overlap=0)
    store = build_rag_store(settings=settings, embeddings=HashEmbeddings())
''')
RAG_WRITER = RAG_COMMON + textwrap.dedent('''
    from backend.storage.ingest import ingest_document
    for n in range(1000):
        path = Path(sys.argv[1]) / f"doc{n}.md"
        path.write_text("\\n\\n".join(" ".join(f"d{n}p{p}w{k}" for k in range(24)) for p in range(6)))
        report = ingest_document(settings=settings, user_id="alice", file_id=f"doc{n}", path=path,
                                 name=path.name, store=store)
        print(json.dumps({"file_id": f"doc{n}", "chunks": report.chunks}), flush=True)
''')
RAG_READER = RAG_COMMON + textwrap.dedent('''
    from backend.storage.documents import INDEXED
    out = {"documents": {}, "nearest_ok": 0, "chunks_checked": 0}
    for doc in store.record.documents(user_id="alice"):
        rows = store.record.chunks(user_id="alice", file_ids=[doc.file_id], statuses=(doc.status,))
        ids = [r.chunk_id for r in rows]
        present = store.index._collection("alice", create=False).get(ids=ids)["ids"] if ids else []
        out["documents"][doc.file_id] = {"status": doc.status, "chunks": doc.chunks, "in_index": len(present)}
        if doc.status == INDEXED:
            for row in rows:
                hits = store.index.query(user_id="alice", embedding=store.embeddings.embed_query(row.text), n=1)
                out["chunks_checked"] += 1
                out["nearest_ok"] += bool(hits) and hits[0][0] == row.chunk_id
    print(json.dumps(out))
''')
COMMITTED_BEFORE_KILL = 6


@pytest.mark.slow
def test_chroma_reopened_by_a_fresh_process_sees_every_committed_chunk(tmp_path: Path, tally: Tally) -> None:
    tally.case(CATEGORY)
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", RAG_WRITER, str(data)], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed: dict[str, int] = {}
    try:
        assert writer.stdout is not None
        for line in writer.stdout:
            item = json.loads(line)
            committed[item["file_id"]] = item["chunks"]
            if len(committed) == COMMITTED_BEFORE_KILL:
                time.sleep(0.07)  # into the next document's embedding
                writer.send_signal(signal.SIGKILL)
                break
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert len(committed) == COMMITTED_BEFORE_KILL, writer.stderr.read() if writer.stderr else ""
    done = subprocess.run([sys.executable, "-c", RAG_READER, str(data)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    for file_id, chunks in committed.items():
        assert seen["documents"][file_id] == {"status": "indexed", "chunks": chunks, "in_index": chunks}, seen
    indexed = {k: v for k, v in seen["documents"].items() if v["status"] == "indexed"}
    for doc in indexed.values():  # also one finished after its report was read: whole, or not indexed at all
        assert doc["in_index"] == doc["chunks"], seen
    assert seen["chunks_checked"] == sum(d["chunks"] for d in indexed.values()) >= sum(committed.values())
    assert seen["nearest_ok"] == seen["chunks_checked"], seen  # every committed vector is found by its own query
    cut_off = [k for k, v in seen["documents"].items() if v["status"] != "indexed"]
    assert all(seen["documents"][k]["status"] == "pending" for k in cut_off), seen  # invisible until reindex
