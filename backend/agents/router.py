"""Router: answer directly, run ReAct, or plan and execute — cheap rules first, the LLM only when they are unsure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from backend.agents.errors import UnknownStrategyError
from backend.agents.state import STRATEGIES, Strategy
from backend.llm.contracts import llm_func

AUTO = "auto"
SHORT_CHAT_CHARS = 40
"""A message this short without a question or a computing verb is small talk."""

GREETING = re.compile(
    r"^(hi|hello|hey|hallo|yo|thanks|thank you|thx|good (morning|afternoon|evening|night)|bye|goodbye|"
    r"ok|okay|cool|great|nice|perfect|got it)\b[\s\w]{0,20}[!.?]*$",
    re.IGNORECASE,
)
COMPUTE = re.compile(
    r"\b(calculate|compute|count|sum|total|average|mean|median|std|standard deviation|variance|percent\w*|"
    r"ratio|correlat\w*|regress\w*|plot|chart|graph|histogram|visuali[sz]e|analy[sz]e|group by|filter|sort|"
    r"top \d+|how many|how much|maximum|minimum|distribution|outliers?|forecast|predict|clean|merge|pivot|"
    r"aggregate|t-test|chi-square|anova|significan\w*|skew\w*|kurtosis|quantile|percentile|"
    r"highest|lowest|largest|smallest|biggest|fewest|rank\w*)\b",
    re.IGNORECASE,
)
ARITHMETIC = re.compile(r"^[\d\s.+\-*/^%()=?,x]+$")
LIST_ITEM = re.compile(r"^\s*(\d+[.)]|[-*•])\s+\S", re.MULTILINE)
OTHER_SOURCES = re.compile(
    r"\b(search\w*|web|internet|online|google|look up|documents?|pdfs?|according to|cite|citations?)\b",
    re.IGNORECASE,
)
"""Words asking for documents or the web: then a multi-part request may need more tools than the coder."""
SEQUENCE = re.compile(r"\b(first\b.*\bthen|then\b.*\b(finally|after that)|after that|step by step|and then)\b",
                      re.IGNORECASE | re.DOTALL)


CODER_TOOL = "python_coder"
MATH_TOOL = "calculator"


@dataclass(frozen=True)
class Route:
    """A rule's decision; `tools` narrows what ReAct is offered (small models choose better from fewer)."""

    strategy: Strategy
    reason: str
    tools: tuple[str, ...] = ()
    first_tool: str = ""
    """Tool to call first with the message itself, without asking the model (data questions)."""


class RouteChoice(BaseModel):
    """How to answer one message."""

    strategy: Literal["direct", "react", "plan_execute"]
    reason: str = Field(default="", max_length=300)


def check_strategy(requested: str | None) -> str:
    """`auto` for None/empty, the strategy itself when known; `UnknownStrategyError` otherwise."""
    value = (requested or AUTO).strip().lower().replace("-", "_")
    if value not in (AUTO, *STRATEGIES):
        raise UnknownStrategyError(f"unknown strategy {requested!r}; choose one of: {AUTO}, {', '.join(STRATEGIES)}")
    return value


def route_by_rules(message: str, *, has_files: bool, has_variables: bool = False) -> Route | None:
    """A confident choice with its reason, or None when only the LLM can tell."""
    text = message.strip()
    computing = bool(COMPUTE.search(text))
    if GREETING.match(text) and not computing:
        return Route("direct", "greeting or acknowledgement")
    multi_part = len(LIST_ITEM.findall(text)) >= 2 or bool(SEQUENCE.search(text))
    if has_files and computing and not (multi_part and OTHER_SOURCES.search(text)):
        # Computing steps over the attached files, however many, are one program for the coder. Planning them
        # first cost small models minutes (their plans came back as solving code).
        return Route("react", "files attached and a computation asked", (CODER_TOOL,), CODER_TOOL)
    if multi_part:
        return Route("plan_execute", "multi-part request")
    if ARITHMETIC.match(text) and any(ch.isdigit() for ch in text):
        return Route("react", "arithmetic", (MATH_TOOL,))
    if has_variables and computing:
        return Route("react", "a computation on saved variables", (CODER_TOOL,), CODER_TOOL)
    if computing:
        return Route("react", "a computation asked")
    if len(text) <= SHORT_CHAT_CHARS and "?" not in text and not has_files:
        return Route("direct", "short chit-chat")
    return None


@llm_func(output_model=RouteChoice, max_retries=1)
async def choose_strategy(message: str, files: str, tools: str) -> RouteChoice:  # type: ignore[empty-body]
    """Decide how an assistant should answer the user's message {message!r}.

    - "direct": small talk, or a question answered from general knowledge without tools.
    - "react": needs one tool-driven task (computing on files, searching documents or the web, arithmetic).
    - "plan_execute": several distinct tasks that depend on each other and need a plan.
    Attached files: {files}. Available tools: {tools}.
    Give the strategy and a short reason."""
