"""Transcript: run events → the content a chat client shows (progress, streamed answer, final corrections, links)."""

from __future__ import annotations

from backend.agents.events import (
    CodeEvent,
    FileEvent,
    FinalAnswer,
    OutputEvent,
    PlanEvent,
    RunEvent,
    StepFinished,
    StepStarted,
    TokenEvent,
)
from backend.api.openai_progress import ProgressMode, Transcript

R = "run1"


def _play(events: list[RunEvent], mode: ProgressMode = "summary") -> tuple[str, Transcript]:
    transcript = Transcript(mode=mode, base_url="http://host:8000/")
    pieces = [piece for event in events for piece in transcript.feed(event)]
    return "".join([*pieces, *transcript.closing()]), transcript


def test_an_answer_without_tokens_is_sent_at_the_end() -> None:
    text, transcript = _play([FinalAnswer(run_id=R, text="42")], mode="none")
    assert text == "42" and transcript.content() == "42"


def test_streamed_tokens_are_not_repeated_and_the_missing_tail_is_added() -> None:
    events: list[RunEvent] = [TokenEvent(run_id=R, text="  The answer"),
                              FinalAnswer(run_id=R, text="The answer is 42.")]
    assert _play(events, mode="none")[0] == "The answer is 42."


def test_a_fallback_answer_that_differs_from_the_tokens_is_still_sent() -> None:
    events: list[RunEvent] = [TokenEvent(run_id=R, text="<tool_call>"), FinalAnswer(run_id=R, text="It is 42.")]
    assert _play(events, mode="none")[0] == "<tool_call>\n\nIt is 42."


def test_summary_shows_the_plan_tool_steps_and_failures_only() -> None:
    events: list[RunEvent] = [
        PlanEvent(run_id=R, steps=[{"goal": "load the file"}, {"goal": "average it"}]),
        StepStarted(run_id=R, step=1, node="reason"),
        StepFinished(run_id=R, step=1, node="reason", output="thinking", duration_ms=10),
        StepFinished(run_id=R, step=2, node="act", tool="python_coder", duration_ms=1500, tokens=30),
        StepFinished(run_id=R, step=3, node="act", tool="rag_search", error="index\nmissing"),
        FinalAnswer(run_id=R, text="Done."),
    ]
    text, transcript = _play(events)
    assert text == ("**Plan**\n\n1. load the file\n2. average it\n\n- ✓ `python_coder` (1.5 s)\n"
                    "- ✗ act · `rag_search` (0.0 s): index missing\n\nDone.")
    assert transcript.agent_tokens == 30 and transcript.content() == "Done."


def test_full_shows_code_and_output_in_fences_and_files_as_links() -> None:
    events: list[RunEvent] = [
        StepStarted(run_id=R, step=1, node="act", tool="python_coder", input="mean"),
        CodeEvent(run_id=R, code="print('```')"),
        OutputEvent(run_id=R, stdout="2.5\n"),
        FileEvent(run_id=R, artifact_id="a1", name="out.csv", url="/api/artifacts/a1"),
        FinalAnswer(run_id=R, text="2.5"),
    ]
    text, transcript = _play(events, mode="full")
    assert "\n````python\nprint('```')\n````\n" in text
    assert "\n```text\n2.5\n```\n" in text
    assert text.endswith("\n2.5\n\n[out.csv](http://host:8000/api/artifacts/a1)")
    assert transcript.content() == "2.5\n\n[out.csv](http://host:8000/api/artifacts/a1)"


def test_progress_stops_once_the_answer_streams() -> None:
    events: list[RunEvent] = [TokenEvent(run_id=R, text="Hi"), StepFinished(run_id=R, step=9, node="x", tool="t"),
                              FinalAnswer(run_id=R, text="Hi")]
    assert _play(events)[0] == "Hi"
