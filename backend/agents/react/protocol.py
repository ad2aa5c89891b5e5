"""The text side of tool calling: read tool calls out of plain replies, and write transcripts for text-only models.

Native providers fill `AIMessage.tool_calls`; small local models often write the Hermes `<tool_call>` block
(or bare JSON) as text instead, or break it. `read_reply` accepts all of these and names what is wrong when a
call cannot be used, so the loop can hand that back to the model as an observation instead of failing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage

from backend.agents.calls import text_of
from backend.llm.tool_calls import CLOSE_TAG, OPEN_TAG, parse_tool_calls


@dataclass(frozen=True)
class Reply:
    """A model reply made usable: `message` carries any tool calls; `problem` is set when a call was malformed."""

    message: AIMessage
    problem: str = ""


def read_reply(reply: AIMessage, tool_names: Iterable[str]) -> Reply:
    """Normalise one reply: native calls kept, text calls parsed, malformed or empty replies described.

    Identical calls within one reply are kept once (small models sometimes emit the same call many times).
    """
    read = _read(reply, tool_names)
    seen: set[str] = set()
    kept: list[ToolCall] = []
    for call in read.message.tool_calls:
        key = json.dumps([call["name"], call["args"]], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(call)
    if len(kept) == len(read.message.tool_calls):
        return read
    message = AIMessage(content=read.message.content, tool_calls=kept, usage_metadata=read.message.usage_metadata)
    return Reply(message, read.problem)


def _read(reply: AIMessage, tool_names: Iterable[str]) -> Reply:
    names = list(tool_names)
    if reply.tool_calls:
        # Fresh ids: some providers reuse or omit them, and results are matched to calls by id.
        calls = [ToolCall(name=c["name"], args=c["args"], id=new_call_id()) for c in reply.tool_calls]
        usage = reply.usage_metadata
        return Reply(AIMessage(content=reply.content, tool_calls=calls, id=reply.id, usage_metadata=usage))
    text = text_of(reply).strip()
    if reply.invalid_tool_calls:
        bad = reply.invalid_tool_calls[0]
        detail = bad.get("error") or f"arguments are not valid JSON: {bad.get('args')!r}"
        return Reply(AIMessage(content=text), problem=f"the call to {bad.get('name')!r} could not be read ({detail})")
    if not text:
        return Reply(AIMessage(content=""), problem="the reply was empty")
    rest, calls = parse_tool_calls(text, tool_names=names)
    if calls:
        return Reply(AIMessage(content=rest, tool_calls=calls, usage_metadata=reply.usage_metadata))
    if OPEN_TAG in text:
        return Reply(AIMessage(content=text), problem="the <tool_call> block is not valid JSON of the form "
                     '{"name": "<tool>", "arguments": {...}}')
    unknown = _json_call_name(text)
    if unknown is not None and len(names) == 1:  # one tool on offer: a misnamed call can only mean that tool
        _, calls = parse_tool_calls(text.replace(f'"{unknown}"', f'"{names[0]}"', 1), tool_names=names)
        if calls:
            return Reply(AIMessage(content="", tool_calls=calls, usage_metadata=reply.usage_metadata))
    if unknown is not None:
        return Reply(AIMessage(content=text), problem=f"there is no tool named {unknown!r}; tools: {', '.join(names)}")
    return Reply(AIMessage(content=text, usage_metadata=reply.usage_metadata))


def is_tool_call_text(text: str) -> bool:
    """Whether a plain-text reply is really a tool call (tagged or bare JSON), not an answer."""
    return OPEN_TAG in text or _json_call_name(text) is not None


def _json_call_name(text: str) -> str | None:
    """The `name` of a reply that is a bare JSON tool call (any name), else None."""
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    if not body.startswith("{"):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("name"), str) and (
        "arguments" in payload or "parameters" in payload
    ):
        return payload["name"]
    return None


def as_text_transcript(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The transcript for a model without native tool calling: calls as `<tool_call>` text, results as user turns."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            blocks = "\n".join(f"{OPEN_TAG}\n{_call_json(c)}\n{CLOSE_TAG}" for c in message.tool_calls)
            text = text_of(message).strip()
            out.append(AIMessage(content=f"{text}\n{blocks}" if text else blocks))
        elif isinstance(message, ToolMessage):
            out.append(HumanMessage(content=f"Observation from {message.name or 'tool'}:\n{text_of(message)}"))
        else:
            out.append(message)
    return out


def _call_json(call: ToolCall) -> str:
    return json.dumps({"name": call["name"], "arguments": call["args"]}, ensure_ascii=False)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"
