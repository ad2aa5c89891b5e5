"""Prompts of the coder loop, ordered for llama.cpp's prefix cache: fixed system text, then files, then the task.

A fix appends to the same conversation and a restart repeats the opening, so the model evaluates only new tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from backend.sandbox.result import SandboxResult
from backend.tools.python_coder.models import CoderContext

SYSTEM_PROMPT = """You are a data analyst who answers questions by writing Python.
Write one short, complete Python script that computes the answer from the files described.
- The files are in the current directory: open them by the exact file name shown.
- Column names are exact and case-sensitive: copy them from the file description.
- Use pandas and numpy; scipy and scikit-learn are available. Save any figure with plt.savefig("name.png").
- Keep it short: no comments, no functions, no plots unless asked, import only what you use.
- Follow every constraint in the question (method, filtering, rounding).
- print() only the final results, each with a label. If the question asks for a format like @name[value], \
print every answer in exactly that format.
Reply with the code in one ```python block and nothing else.

Example of the expected style, for the question "Mean Salary in the Sales department, rounded to 2 decimals? \
Format: @mean_salary[value]":
```python
import pandas as pd
df = pd.read_csv("staff.csv")
print(f"@mean_salary[{df[df['Dept'] == 'Sales']['Salary'].mean():.2f}]")
```"""

NO_FILES_USE_VARIABLES = """No files are attached. The saved variables below are already defined in this session: \
use them directly by name, do not read any file and do not redefine them.
For example, if `price_total` were saved, the question "Add 10% to price_total" would be answered by:
```python
result = price_total * 1.1
print(f"price_total * 1.1 = {result:.2f}")
```"""
"""Without files, small models otherwise copy the system prompt's read_csv example and invent a table."""
CONCISE = "Keep it short, no comments."
"""Repeated in follow-up requests: in long conversations small models forget the system prompt's style rules."""
CORRECTED = f"Reply with the corrected complete script. {CONCISE}"
FSTRING_HINT = "Compute every value in a variable first; inside f-string braces put only names and formats like :.2f."
CODE_STOP = ["\n```\n"]
"""Generation stops at the closing fence: the explanation small models add afterwards costs seconds."""
MAX_SECTION_CHARS = 2500
"""Longest context section (history, notepad, variables, plan) put into the prompt."""
MAX_RESTART_PROBLEMS = 3
"""Earlier failures listed when the loop starts afresh."""
MAX_OBSERVATION_CHARS = 1500
"""Longest program output or error shown back to the model."""


def task_messages(
    *, question: str, file_descriptions: Sequence[str], context: CoderContext | None
) -> list[BaseMessage]:
    """The opening conversation: system rules, the files, optional context, then the question."""
    parts: list[str] = []
    has_variables = context is not None and bool(context.variables.strip())
    if file_descriptions:
        parts.append("Files in the current directory:\n\n" + "\n\n".join(file_descriptions))
    elif has_variables:
        parts.append(NO_FILES_USE_VARIABLES)
    else:
        parts.append("No files are attached.")
    if context is not None:
        sections = (
            ("Earlier in this conversation", context.history),
            ("Notepad (findings so far)", context.notepad),
            ("Saved variables (already defined in this session)", context.variables),
            ("Plan", context.plan),
        )
        parts.extend(f"{title}:\n{_clip(body, MAX_SECTION_CHARS)}" for title, body in sections if body.strip())
    parts.append(f"Question: {question.strip()}")
    return [SystemMessage(content=SYSTEM_PROMPT), HumanMessage(content="\n\n".join(parts))]


def assistant_code(code: str) -> AIMessage:
    """The model's program as it is kept in the conversation (normalised, so retries see clean code)."""
    return AIMessage(content=f"```python\n{code}\n```")


def no_code_message() -> HumanMessage:
    return HumanMessage(content="Your reply had no Python code. Reply with the complete script in one ```python block.")


def restart_message(problems: Sequence[str]) -> HumanMessage:
    """A fresh start after the fix conversation went in circles: the earlier failures, as things to avoid."""
    shown = problems[-MAX_RESTART_PROBLEMS:]
    listed = "\n".join(f"- {p}" for p in shown) or "- (no details)"
    hint = f"{FSTRING_HINT}\n" if any("f-string" in p for p in shown) else ""
    return HumanMessage(
        content=f"Earlier scripts for this question failed:\n{listed}\n{hint}"
        f"Write a new, different script that avoids these problems and does only what the question asks. {CONCISE}"
    )


def fix_message(*, code: str, result: SandboxResult, hint: str = "") -> HumanMessage:
    """Ask for a fix, showing the error, the failing line and (for a missing key) what does exist."""
    observation = result.observation(max_chars=MAX_OBSERVATION_CHARS)
    lines = code.split("\n")
    failing = ""
    if result.error_line and 0 < result.error_line <= len(lines):
        failing = f"\nFailing line {result.error_line}: {lines[result.error_line - 1].strip()}"
    extra = f"\n{hint}" if hint else ""
    return HumanMessage(
        content=f"The script failed:\n{_clip(observation, MAX_OBSERVATION_CHARS)}{failing}{extra}\n"
        f"{CORRECTED}"
    )


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit // 2] + "\n...[cut]...\n" + text[-limit // 2 :]
