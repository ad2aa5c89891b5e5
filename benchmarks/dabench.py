"""DABench accuracy and speed of our coder (or, later, the agent) with the embedded model.

    .venv/bin/python benchmarks/dabench.py --questions ../shared/bench/dabench-dev/questions.jsonl \
        --labels ../shared/bench/dabench-dev/labels.jsonl --tables ../shared/bench/dabench-dev/tables --limit 30

Each question becomes one prompt (question + constraints + format) over its table. Responses go to a JSONL
file; grading calls the `grade()` of the grader script given by --grader (its logic, not a copy). Prints one
line per question, the grader's three figures, and the median seconds per question. Nothing here sees labels
before the answer is written.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_BENCH = ROOT.parent / "shared" / "bench"
ANSWER = re.compile(r"@(\w+)\[(.*?)\]")
TEMPLATE_NAME = re.compile(r"@(\w+)\[")


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_grader(path: Path) -> ModuleType:
    """Import the grader script from its path, so its own `grade()` and `same()` decide."""
    spec = importlib.util.spec_from_file_location("dabench_grade", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import grader {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_prompt(q: dict[str, Any]) -> str:
    """DABench's prompt: the question, its constraints and the required answer format."""
    return f"{q['question']}\nConstraints: {q['constraints']}\nAnswer format: {q['format']}"


def answer_names(q: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(TEMPLATE_NAME.findall(q["format"])))


def format_from_output(output: str, names: list[str]) -> dict[str, str]:
    """Deterministic formatting step: `@name[value]` lines first, then `name: value` / `name = value` lines."""
    found = {k: v for k, v in ANSWER.findall(output) if k in names}
    for name in names:
        if name in found:
            continue
        label = re.escape(name).replace("_", "[ _]")
        match = re.search(rf"{label}\s*[:=]\s*([^\s,;]+)", output, re.IGNORECASE)
        if match:
            found[name] = match.group(1).strip("'\"")
    return found


async def fill_with_llm(*, llm: Any, question: str, output: str, names: list[str]) -> dict[str, str]:
    """Last resort, one short LLM call: map the printed output onto the missing answer names."""
    from backend.tools.python_coder.answers import fill_answers

    return await fill_answers(llm=llm, question=question, output=output, names=names)


async def run_via_coder(q: dict[str, Any], tables: Path, *, llm: Any, sandbox: Any, settings: Any) -> dict[str, Any]:
    """Our coder loop alone: the question goes straight to `run_coder`."""
    from backend.tools.python_coder import run_coder

    session = f"dabench-{q['id']}-{uuid.uuid4().hex[:6]}"
    prompt = build_prompt(q)
    try:
        result = await run_coder(question=prompt, session_id=session, llm=llm, sandbox=sandbox, settings=settings,
                                 files={q["file_name"]: tables / q["file_name"]}, context=None, on_event=None)
    finally:
        await sandbox.reset(session)
        shutil.rmtree(settings.sessions_dir / session, ignore_errors=True)
    row = await to_response(q, result.output, llm=llm)
    attempts = [a.model_dump(exclude={"result"}) for a in result.attempts]
    row.update(success=result.success, executions=result.executions, llm_calls=result.llm_calls + row["llm_calls"],
               error=result.error, code=result.code, attempts=attempts)
    return row


async def run_via_agent(q: dict[str, Any], tables: Path, *, llm: Any, sandbox: Any, settings: Any) -> dict[str, Any]:
    """The full agent (router, ReAct or Plan-Execute, tools) answering the same prompt in a fresh conversation."""
    try:
        from backend.agents.events import ErrorEvent, FinalAnswer, StepFinished, ToolCall
        from backend.agents.service import AgentService
        from backend.tools.builtin import build_registry
    except ImportError as exc:
        raise NotImplementedError(f"--via agent needs backend.agents.service ({exc})") from exc
    service = AgentService(settings=settings, llm=llm, tools=build_registry(settings=settings, sandbox=sandbox))
    conversation = f"dabench-{q['id']}-{uuid.uuid4().hex[:6]}"
    answer, error, tools = "", None, 0
    steps: list[str] = []  # the turn's finished steps, to see where a slow question spent its time
    try:
        async for event in service.run(run_id=conversation, conversation_id=conversation, user_id="dabench",
                                       message=build_prompt(q), files={q["file_name"]: tables / q["file_name"]}):
            if isinstance(event, FinalAnswer):
                answer = event.text
            elif isinstance(event, ErrorEvent):
                error = event.message
            elif isinstance(event, ToolCall):
                tools += 1
            elif isinstance(event, StepFinished):
                what = f"{event.node}/{event.tool}" if event.tool else event.node
                steps.append(f"{what} {event.duration_ms / 1000:.1f}s" + (f" error={event.error[:80]}" if event.error
                                                                          else ""))
    finally:
        await sandbox.reset(conversation)
        shutil.rmtree(settings.sessions_dir / conversation, ignore_errors=True)
    row = await to_response(q, answer, llm=llm)
    row.update(success=error is None, executions=tools, error=error, code="", attempts=[], steps=steps)
    return row


async def to_response(q: dict[str, Any], text: str, *, llm: Any) -> dict[str, Any]:
    """The formatting step: deterministic from the printed text, one short LLM call only for names still missing."""
    names = answer_names(q)
    found = format_from_output(text, names)
    from backend.llm.contracts import record_llm_calls

    filled, calls = False, 0
    if text.strip() and len(found) < len(names):
        missing = [n for n in names if n not in found]
        with record_llm_calls() as records:
            found.update(await fill_with_llm(llm=llm, question=build_prompt(q), output=text, names=missing))
        filled, calls = True, sum(len(r.get_attempts_history()) for r in records)
    response = " ".join(f"@{n}[{found[n]}]" for n in names if n in found)
    return {"id": q["id"], "response": response, "filled_by_llm": filled, "llm_calls": calls, "output": text[-2000:]}


async def main_async(args: argparse.Namespace) -> int:
    from backend.core.settings import Settings
    from backend.llm.factory import get_chat_model
    from backend.sandbox.manager import SandboxManager

    questions = load_jsonl(args.questions)
    if args.ids:
        wanted = {int(i) for i in args.ids.split(",")}
        questions = [q for q in questions if q["id"] in wanted]
    questions = questions[args.offset : args.offset + args.limit if args.limit else None]
    grader = load_grader(args.grader)
    labels = {row["id"]: row for row in load_jsonl(args.labels)}

    settings = Settings(llm_providers=["llamacpp"], embedded_model=args.model, coder_verify_mode=args.verify_mode)
    if args.max_executions:
        settings.coder_max_executions = args.max_executions
    llm = get_chat_model(settings=settings)
    sandbox = SandboxManager(settings=settings)
    started = time.perf_counter()
    await llm.ainvoke("Say OK.", max_tokens=2)
    warmup = time.perf_counter() - started
    print(f"model {args.model} loaded and warmed in {warmup:.1f} s; via={args.via} verify={args.verify_mode} "
          f"max_executions={settings.coder_max_executions}; load average at start: {_load()}", flush=True)

    run = run_via_coder if args.via == "coder" else run_via_agent
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    right: list[bool] = []
    try:
        with args.out.open("w") as out:
            for q in questions:
                t0, cpu0 = time.perf_counter(), time.process_time()
                row = await run(q, args.tables, llm=llm, sandbox=sandbox, settings=settings)
                row["seconds"] = round(time.perf_counter() - t0, 2)
                row["cpu_seconds"] = round(time.process_time() - cpu0, 2)
                out.write(json.dumps(row) + "\n")
                out.flush()
                rows.append(row)
                seconds.append(row["seconds"])
                ok = grader.grade([row], [labels[q["id"]]])[0] == 1.0
                right.append(ok)
                print(f"q{q['id']:<4} {'RIGHT' if ok else 'wrong'} {row['seconds']:6.1f} s  "
                      f"exec={row['executions']} llm={row['llm_calls']}  {row['response'][:90]}", flush=True)
    finally:
        await sandbox.shutdown()

    by_q, prop, sub = grader.grade(rows, [labels[q["id"]] for q in questions])
    print(f"\nquestions: {len(rows)}  responses: {args.out}")
    print(f"proportional: {prop:.2%}  by sub-answer: {sub:.2%}")
    print(f"accuracy by question: {by_q:.2%} ({sum(right)}/{len(right)})")
    print(f"seconds per question: median {statistics.median(seconds):.1f}  mean {statistics.fmean(seconds):.1f}  "
          f"p90 {_p90(seconds):.1f}  total {sum(seconds):.0f}")
    print(f"CPU seconds per question in this process (llama.cpp threads, not the sandbox): "
          f"median {statistics.median(r['cpu_seconds'] for r in rows):.1f}")
    print(f"llm calls per question: mean {statistics.fmean(r['llm_calls'] for r in rows):.2f}; "
          f"executions: mean {statistics.fmean(r['executions'] for r in rows):.2f}; "
          f"answers filled by the LLM formatter: {sum(r['filled_by_llm'] for r in rows)}")
    print("bar: smolagents 25.0% @ 48 s median, naive loop 37.5% @ 16 s median (1.5B, 2 cores)")
    print(f"load average at end: {_load()}")
    return 0


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_BENCH / "dabench-dev" / "questions.jsonl")
    parser.add_argument("--labels", type=Path, default=DEFAULT_BENCH / "dabench-dev" / "labels.jsonl")
    parser.add_argument("--tables", type=Path, default=DEFAULT_BENCH / "dabench-dev" / "tables")
    parser.add_argument("--grader", type=Path, default=DEFAULT_BENCH / "dabench_grade.py")
    parser.add_argument("--limit", type=int, default=0, help="questions to run (0 = all)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many questions first")
    parser.add_argument("--ids", default="", help="comma-separated question ids to run")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", choices=["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"])
    parser.add_argument("--via", default="coder", choices=["coder", "agent"])
    parser.add_argument("--verify-mode", default="auto", choices=["auto", "llm", "rules"])
    parser.add_argument("--max-executions", type=int, default=None, help="default: the settings' coder_max_executions")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dabench_responses.jsonl")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
