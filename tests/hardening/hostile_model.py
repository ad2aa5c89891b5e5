"""A scripted model that writes whatever program the user smuggles in, for the hardening suites.

A message carrying `CODE[<urlsafe base64>]` makes ReAct call python_coder and the coder "write" exactly that
program, so an escape payload travels the real path: HTTP → route → agent graph → coder → policy → sandbox.
The answer quotes the tool's observation verbatim (output and errors), so anything the payload got hold of
would reach the user, where the suites look for it. Everything else is played by the demo model.

Run as a script it starts the backend (run_backend.py, same APP_* settings) with this model as `fake`:
    APP_LLM_PROVIDERS=fake python tests/hardening/hostile_model.py
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.demo_model import demo_reply, question_of, text  # noqa: E402

CODE_MARK = re.compile(r"CODE\[([A-Za-z0-9_=-]+)\]")
CODER_SYSTEM = "You are a data analyst who answers questions by writing Python"
REACT_SYSTEM = "You are a careful data analysis assistant"
ANSWER_PREFIX = "Tool said:\n"


def smuggle(code: str, note: str = "Run the attached program") -> str:
    """A chat message that makes this model run `code` in the sandbox."""
    return f"{note}. CODE[{base64.urlsafe_b64encode(code.encode()).decode()}]"


def smuggled(messages: list[BaseMessage]) -> str | None:
    found = CODE_MARK.findall(question_of(messages))
    return base64.urlsafe_b64decode(found[-1]).decode() if found else None


def hostile_reply(messages: list[BaseMessage]) -> AIMessage:
    system = text(messages[0]) if messages and isinstance(messages[0], SystemMessage) else ""
    humans = [text(m) for m in messages if isinstance(m, HumanMessage)]
    code = smuggled(messages)
    if code is None:
        return demo_reply(messages)
    last = messages[-1]
    if system.startswith(CODER_SYSTEM):
        if "Does this output answer the question" in (humans[-1] if humans else ""):
            return AIMessage(content='{"answers_question": true, "reason": "scripted"}')
        return AIMessage(content=f"```python\n{code}\n```")
    if system.startswith(REACT_SYSTEM):
        if isinstance(last, ToolMessage):
            return AIMessage(content=ANSWER_PREFIX + text(last))
        question = question_of(messages)
        return AIMessage(content="", tool_calls=[{"name": "python_coder", "args": {"question": question},
                                                  "id": "call_python_coder", "type": "tool_call"}])
    return demo_reply(messages)


def install() -> None:
    """Make the `fake` provider of this process play the hostile script."""
    from backend.llm import factory
    from backend.llm.fake import ScriptedChatModel

    factory.fake_model = lambda: ScriptedChatModel(replies=[hostile_reply], cycle=True)  # type: ignore[assignment]


def main() -> None:
    install()
    import run_backend

    run_backend.main()


if __name__ == "__main__":
    main()
