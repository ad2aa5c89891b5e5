"""The coder loop with a scripted model and a scripted sandbox: fixes, verification, limits, events, prompts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from backend.agents.events import CodeEvent, FigureEvent, OutputEvent
from backend.core.settings import Settings
from backend.llm.fake import ScriptedChatModel
from backend.sandbox.replies import crash_reply, result_from_reply
from backend.sandbox.result import SandboxResult
from backend.sandbox.worker import WorkerCrashed
from backend.tools.builtin import CoderFailedError, coder_observation
from backend.tools.python_coder import CoderContext, run_coder


class FakeSandbox:
    """Returns scripted results in order and records every program it was asked to run."""

    def __init__(self, *results: SandboxResult) -> None:
        self.results = list(results)
        self.codes: list[str] = []
        self.files: list[Mapping[str, Path] | None] = []

    async def run(
        self, *, session_id: str, code: str, files: Mapping[str, Path] | None = None, timeout: float | None = None  # noqa: ASYNC109
    ) -> SandboxResult:
        self.codes.append(code)
        self.files.append(files)
        return self.results.pop(0)


def ok(stdout: str, **extra: Any) -> SandboxResult:
    return SandboxResult(ok=True, stdout=stdout, **extra)


def failed(error_type: str, message: str, line: int | None = None) -> SandboxResult:
    return SandboxResult(ok=False, error_type=error_type, error_message=message, error_line=line)


def killed_worker() -> SandboxResult:
    """What the real sandbox makes of a worker SIGKILLed under a run (the OOM killer, or an operator)."""
    crash = WorkerCrashed("worker died: pipe closed", returncode=-9, detail="")
    return result_from_reply(crash_reply(crash), files=[], elapsed_ms=5.0, limit=1000)


def code(body: str) -> str:
    return f"```python\n{body}\n```"


def text_of(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "titanic.csv"
    path.write_text("PassengerId,Fare,Sex\n1,7.25,male\n2,71.28,female\n3,7.92,female\n")
    return path


async def ask(settings: Settings, llm: ScriptedChatModel, sandbox: FakeSandbox, question: str,
              files: dict[str, Path] | None = None, **kwargs: Any) -> Any:
    return await run_coder(question=question, session_id="s1", llm=llm, sandbox=sandbox, settings=settings,
                           files=files or {}, context=kwargs.pop("context", None), **kwargs)


async def test_error_then_fix_then_success(settings: Settings, table: Path) -> None:
    llm = ScriptedChatModel(replies=[code("print(df['fare'].mean())"), code("print(df['Fare'].mean())")])
    sandbox = FakeSandbox(failed("KeyError", "'fare'", line=1), ok("28.82"))
    result = await ask(settings, llm, sandbox, "Mean fare?", {"titanic.csv": table})
    assert result.success and result.output == "28.82"
    assert result.code == "print(df['Fare'].mean())"
    assert [a.kind for a in result.attempts] == ["generate", "fix"]
    fix_prompt = text_of(llm.calls[1])
    assert "KeyError: 'fare'" in fix_prompt and "Columns of titanic.csv: ['PassengerId', 'Fare', 'Sex']" in fix_prompt


async def test_prompt_carries_exact_column_names_dtypes_and_file_name(settings: Settings, table: Path) -> None:
    llm = ScriptedChatModel(replies=[code("print(1)")])
    await ask(settings, llm, FakeSandbox(ok("1")), "Mean fare?", {"titanic.csv": table})
    prompt = text_of(llm.calls[0])
    assert "'Fare' float64" in prompt and "'PassengerId' int64" in prompt
    assert "pd.read_csv('titanic.csv')" in prompt and "3 rows x 3 columns" in prompt


async def test_prompt_keeps_system_text_first_and_question_last(settings: Settings, table: Path) -> None:
    llm = ScriptedChatModel(replies=[code("print(1)")])
    context = CoderContext(history="user asked about fares", variables="df: dataframe", notepad="", plan="step 1")
    await ask(settings, llm, FakeSandbox(ok("1")), "Mean fare?", {"titanic.csv": table}, context=context)
    system, task = llm.calls[0]
    assert system.type == "system" and "titanic" not in str(system.content)
    body = str(task.content)
    assert body.index("titanic.csv") < body.index("user asked about fares") < body.index("Question: Mean fare?")
    assert "Notepad" not in body  # empty sections are left out


async def test_missing_template_answer_makes_the_model_revise(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("print(28.8)"), code("print('@mean_fare[28.8]')")])
    sandbox = FakeSandbox(ok("28.8"), ok("@mean_fare[28.8]"))
    result = await ask(settings, llm, sandbox, "Mean fare? Format: @mean_fare[value]")
    assert result.success and result.output == "@mean_fare[28.8]"
    assert [a.kind for a in result.attempts] == ["generate", "revise"]
    assert result.attempts[0].verdict is not None and not result.attempts[0].verdict.answers_question
    assert len(llm.calls[1]) == 3 and "@mean_fare[...]" in str(llm.calls[1][-1].content)  # restarted, reason listed


async def test_llm_verdict_rejection_regenerates(settings: Settings) -> None:
    settings.coder_verify_mode = "llm"
    llm = ScriptedChatModel(replies=[
        code("print(df.head())"),
        '{"answers_question": false, "reason": "it prints rows, not the mean"}',
        code("print(28.8)"),
        '{"answers_question": true, "reason": ""}',
    ])
    result = await ask(settings, llm, FakeSandbox(ok("   A  B\n0  1  2"), ok("28.8")), "Mean fare?")
    assert result.success and result.output == "28.8"
    assert [a.verdict_source for a in result.attempts] == ["llm", "llm"]
    assert "it prints rows, not the mean" in text_of(llm.calls[2])
    assert result.llm_calls == 4


async def test_auto_mode_skips_the_llm_verdict_for_a_plain_answer(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("print(28.8)")])
    result = await ask(settings, llm, FakeSandbox(ok("mean fare: 28.8")), "Mean fare?")
    assert result.success and result.llm_calls == 1
    assert result.attempts[0].verdict_source == "rules"


async def test_auto_mode_asks_the_llm_when_output_has_nan(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("print(x)"), '{"answers_question": true, "reason": ""}'])
    result = await ask(settings, llm, FakeSandbox(ok("mean: nan")), "Mean fare?")
    assert result.llm_calls == 2 and result.attempts[0].verdict_source == "llm"


async def test_max_executions_reached_gives_clear_failure(settings: Settings) -> None:
    settings.coder_max_executions = 3
    llm = ScriptedChatModel(replies=[code("1/0"), code("2/0"), code("3/0")])
    sandbox = FakeSandbox(*[failed("ZeroDivisionError", f"division by zero {i}", line=1) for i in range(3)])
    result = await ask(settings, llm, sandbox, "Divide")
    assert not result.success
    assert result.error is not None and "3 executions" in result.error and "ZeroDivisionError" in result.error
    assert len(result.attempts) == 3 and len(sandbox.codes) == 3 and result.output == ""


async def test_a_killed_worker_is_named_in_the_final_error_not_the_repeat_after_it(settings: Settings) -> None:
    settings.coder_max_executions = 2
    program = "rows = [0] * 10**10"
    llm = ScriptedChatModel(replies=[code(program), code(program)])  # the model retries the very same program
    sandbox = FakeSandbox(killed_worker())
    result = await ask(settings, llm, sandbox, "Build the table")
    assert not result.success and sandbox.codes == [program]  # the repeat was not run again
    assert result.error == ("no working answer after 2 executions; "
                            "the sandbox worker crashed: the interpreter was killed (SIGKILL: out of memory?)")
    with pytest.raises(CoderFailedError, match="the sandbox worker crashed: the interpreter was killed"):
        coder_observation(result)  # what the agent, and so the user, is told


async def test_a_crash_followed_by_another_failing_run_reports_that_runs_problem(settings: Settings) -> None:
    settings.coder_max_executions = 2
    llm = ScriptedChatModel(replies=[code("rows = [0] * 10**10"), code("1/0")])
    sandbox = FakeSandbox(killed_worker(), failed("ZeroDivisionError", "division by zero", line=1))
    result = await ask(settings, llm, sandbox, "Build the table")
    assert result.error == ("no working answer after 2 executions; "
                            "last problem: ZeroDivisionError: division by zero at `1/0`")


async def test_a_program_identical_to_an_earlier_one_is_not_run_again(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("1/0"), code("1/0 "), code("print(1)")])
    sandbox = FakeSandbox(failed("ZeroDivisionError", "division by zero", line=1), ok("1"))
    result = await ask(settings, llm, sandbox, "One?")
    assert result.success and sandbox.codes == ["1/0", "print(1)"]
    assert result.attempts[1].static_error is not None and "same program" in result.attempts[1].static_error


async def test_repeated_program_restarts_the_conversation_with_the_failures_listed(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("1/0"), code("1/0"), code("print(1)")])
    await ask(settings, llm, FakeSandbox(failed("ZeroDivisionError", "division by zero", line=1), ok("1")), "One?")
    restart = llm.calls[2]
    assert len(restart) == 3 and restart[:2] == llm.calls[0]  # same opening: the cached prefix is reused
    assert "ZeroDivisionError: division by zero at `1/0`" in str(restart[2].content)


async def test_same_error_twice_restarts_instead_of_another_fix(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("x = df"), code("y = df"), code("print(1)")])
    boom = failed("NameError", "name 'df' is not defined", line=1)
    await ask(settings, llm, FakeSandbox(boom, boom, ok("1")), "One?")
    assert len(llm.calls[1]) == 4 and len(llm.calls[2]) == 3


async def test_verification_budget_exhausted_fails_but_keeps_output(settings: Settings) -> None:
    settings.coder_max_verifications = 1
    llm = ScriptedChatModel(replies=[code("print(1)")])
    result = await ask(settings, llm, FakeSandbox(ok("1")), "Give @answer[value]")
    assert not result.success and result.output == "1"
    assert result.error is not None and result.error.startswith("verification failed")


async def test_zero_verifications_accepts_any_clean_run(settings: Settings) -> None:
    settings.coder_max_verifications = 0
    llm = ScriptedChatModel(replies=[code("print(1)")])
    result = await ask(settings, llm, FakeSandbox(ok("1")), "Give @answer[value]")
    assert result.success and result.attempts[0].verdict is None


async def test_syntax_error_is_fixed_without_touching_the_sandbox(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=[code("print(1"), code("print(1)")])
    sandbox = FakeSandbox(ok("1"))
    result = await ask(settings, llm, sandbox, "One?")
    assert result.success and sandbox.codes == ["print(1)"]
    assert result.attempts[0].static_error is not None and "SyntaxError" in str(llm.calls[1][-1].content)


async def test_looping_reply_is_cut_off_and_never_run(settings: Settings) -> None:
    looping = "```python\nimport pandas as pd\n" + "df['a'] = df['a'].astype(int)\n" * 40 + "```"
    llm = ScriptedChatModel(replies=[looping, code("print(1)")])
    sandbox = FakeSandbox(ok("1"))
    result = await ask(settings, llm, sandbox, "One?")
    assert result.success and sandbox.codes == ["print(1)"]
    assert result.attempts[0].static_error == "the reply kept repeating itself and was cut off"
    assert result.attempts[0].code.count("astype") == 1
    assert len(llm.calls[1]) == 3 and "kept repeating itself" in str(llm.calls[1][-1].content)


async def test_reply_without_code_is_asked_again(settings: Settings) -> None:
    llm = ScriptedChatModel(replies=["The answer is probably 3.", code("print(3)")])
    result = await ask(settings, llm, FakeSandbox(ok("3")), "Three?")
    assert result.success and result.attempts[0].static_error == "the reply contained no Python code"


async def test_events_follow_the_run_in_order(settings: Settings) -> None:
    events: list[Any] = []
    llm = ScriptedChatModel(replies=[code("plt.savefig('fare.png')\nprint('saved')")])
    sandbox = FakeSandbox(ok("saved", files_created=["fare.png"]))
    result = await ask(settings, llm, sandbox, "Plot fares", on_event=events.append, run_id="r9")
    assert [type(e) for e in events] == [CodeEvent, OutputEvent, FigureEvent]
    assert all(e.run_id == "r9" for e in events) and result.figures == ["fare.png"]


async def test_async_event_sink_is_awaited(settings: Settings) -> None:
    seen: list[str] = []

    async def sink(event: Any) -> None:
        seen.append(event.type)

    llm = ScriptedChatModel(replies=[code("print(1)")])
    await ask(settings, llm, FakeSandbox(ok("1")), "One?", on_event=sink)
    assert seen == ["code", "output"]


async def test_files_are_passed_to_the_sandbox_by_their_names(settings: Settings, table: Path) -> None:
    sandbox = FakeSandbox(ok("1"))
    await ask(settings, ScriptedChatModel(replies=[code("print(1)")]), sandbox, "One?", {"titanic.csv": table})
    assert sandbox.files == [{"titanic.csv": table}]


async def test_model_failure_is_a_failed_result_not_an_exception(settings: Settings) -> None:
    result = await ask(settings, ScriptedChatModel(replies=[]), FakeSandbox(), "Anything?")
    assert not result.success and result.error is not None and "language model failed" in result.error


async def test_unreadable_file_is_named_in_the_prompt(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    llm = ScriptedChatModel(replies=[code("print(1)")])
    await ask(settings, llm, FakeSandbox(ok("1")), "Rows?", {"broken.parquet": broken})
    assert "File `broken.parquet`: could not be inspected" in text_of(llm.calls[0])
