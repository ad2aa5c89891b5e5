"""Does a clean run answer the question? Free rules first; a structured LLM verdict only when it is worth its cost."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

from backend.llm.contracts import llm_func, use_llm
from backend.tools.python_coder.models import Verdict

TEMPLATE_NAME = re.compile(r"@(\w+)\[")
ANSWER = re.compile(r"@(\w+)\[(.*?)\]")
DIRECT_ANSWER_MAX_CHARS = 400
"""Output up to this long, with no suspicious value, counts as a direct answer in `auto` mode."""
DIRECT_ANSWER_MAX_LINES = 12
"""More printed lines than this looks like a dump rather than an answer."""
SUSPECT_VALUE = re.compile(r"\b(nan|NaN|None|inf)\b|Empty DataFrame|Traceback")
PYTHON_BOOLEANS = ("True", "False")
"""Printed where the question never says True/False, these leak from code (`x < 0.5`) instead of the asked words."""
VERDICT_RETRIES = 1
"""Re-asks when the verdict does not parse; after that the loop accepts the output rather than stall."""
MAX_VERDICT_OUTPUT_CHARS = 1200
"""Output shown to the verifier (the tail: answers are printed last)."""
INVALID_VALUES = {"", "nan", "NaN", "None", "inf", "-inf"}
"""Python's renderings of a missing value (lower-case `none` can be a legitimate category)."""


def requested_names(question: str) -> list[str]:
    """Answer names the question asks to be printed as `@name[value]`, in order, without repeats."""
    return list(dict.fromkeys(TEMPLATE_NAME.findall(question)))


def rule_verdict(*, question: str, output: str, produced_files: Sequence[str]) -> Verdict | None:
    """A verdict decided without the LLM, or None when the rules cannot tell."""
    text = output.strip()
    if not text and not produced_files:
        return Verdict(answers_question=False, reason="the script printed nothing; print() the results.")
    names = requested_names(question)
    if not names:
        return None
    found = dict(ANSWER.findall(text))
    missing = [name for name in names if name not in found]
    if missing:
        wanted = " ".join(f"@{name}[...]" for name in missing)
        reason = f"it does not print {wanted}; print every answer as @name[value]."
        return Verdict(answers_question=False, reason=reason)
    invalid = [name for name in names if found[name].strip() in INVALID_VALUES]
    if invalid:
        shown = ", ".join(f"@{name}[{found[name]}]" for name in invalid)
        return Verdict(answers_question=False, reason=f"{shown} has no valid value; check missing data and filters.")
    booleans = [name for name in names if found[name].strip() in PYTHON_BOOLEANS]
    if booleans and not any(word in question for word in PYTHON_BOOLEANS):
        shown = ", ".join(f"@{name}[{found[name]}]" for name in booleans)
        reason = f"{shown} is a Python boolean; print the answer in the words the question asks for."
        return Verdict(answers_question=False, reason=reason)
    return Verdict(answers_question=True, reason="every requested value is printed.")


def looks_direct(output: str) -> bool:
    """Short, plain output with no NaN/None/empty frame: a computed answer not worth an LLM check."""
    text = output.strip()
    return (
        0 < len(text) <= DIRECT_ANSWER_MAX_CHARS
        and text.count("\n") < DIRECT_ANSWER_MAX_LINES
        and not SUSPECT_VALUE.search(text)
    )


@llm_func(output_model=Verdict, max_retries=VERDICT_RETRIES)
async def judge_output(question: str, code: str, output: str) -> Verdict:
    """Judge whether a program's printed output answers a question about data.

    Question: {question}

    Program:
    {code}

    Printed output:
    {output}

    Set answers_question to false only if a requested value is missing, not computed as the question asks,
    or clearly wrong; then say in reason, in one sentence, what to change. Otherwise true with reason "".
    """
    raise NotImplementedError  # body never runs: @llm_func answers


async def llm_verdict(*, llm: BaseChatModel, question: str, code: str, output: str) -> Verdict:
    """One structured LLM call (through `@llm_func`) judging `output`."""
    with use_llm(llm):
        return await judge_output(question, code, output[-MAX_VERDICT_OUTPUT_CHARS:])
