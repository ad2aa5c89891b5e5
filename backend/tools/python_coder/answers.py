"""Map a program's printed output onto named answers (e.g. `@name[value]` formats) with one short LLM call."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

from backend.llm.contracts import llm_func, use_llm
from backend.llm.errors import short_error

logger = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 1500
"""Output shown to the formatter; answers are printed last, so the tail is kept."""
READ_RETRIES = 1
"""One re-ask when the reply does not parse; formatting is never worth more."""

Value = str | int | float | bool


def _known_names(output: dict[str, Value], names: list[str]) -> bool:
    return set(output) <= set(names)


@llm_func(post_hooks=[_known_names], max_retries=READ_RETRIES)
async def read_answers(question: str, output: str, names: list[str]) -> dict[str, Value]:
    """Copy from a program's printed output the value it printed for each of these names: {names}.

    The program answered this question: {question}

    Printed output:
    {output}

    Copy values exactly as printed (do not recompute or round again). Leave out a name whose value is not printed.
    """
    raise NotImplementedError  # body never runs: @llm_func answers


async def fill_answers(*, llm: BaseChatModel, question: str, output: str, names: Sequence[str]) -> dict[str, str]:
    """Values for `names` read from `output`; names the model cannot find (or a failed call) are left out."""
    try:
        with use_llm(llm):
            values = await read_answers(question, output[-MAX_OUTPUT_CHARS:], list(names))
    except Exception as exc:  # formatting is best effort: the caller keeps what it already has
        logger.warning("answer formatting failed: %s", short_error(exc))
        return {}
    return {name: str(value) for name, value in values.items() if str(value).strip()}
