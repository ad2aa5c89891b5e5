"""Hermes-style tool calling for chat templates like Qwen2.5's: messages in, `<tool_call>` blocks out.

The template renders the tool schemas; the model answers `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.
Parsing never raises: anything malformed stays in the reply as plain text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN_TAG) + r"(.*?)(?:" + re.escape(CLOSE_TAG) + r"|\Z)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def text_of(content: str | list[Any]) -> str:
    """Plain text of a message's content (text blocks joined; images and other blocks dropped)."""
    if isinstance(content, str):
        return content
    parts = [b if isinstance(b, str) else b.get("text", "") for b in content if isinstance(b, str | dict)]
    return "".join(parts)


def to_openai_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Tool schemas in the OpenAI shape the chat template renders."""
    return [convert_to_openai_tool(tool) for tool in tools]


def to_chat_dicts(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the OpenAI-style dicts a Jinja chat template expects."""
    out: list[dict[str, Any]] = []
    for message in messages:
        text = text_of(message.content)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": text})
        elif isinstance(message, AIMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if message.tool_calls:  # arguments as a dict: Qwen's template applies `tojson` itself
                entry["tool_calls"] = [
                    {"id": tc.get("id"), "type": "function", "function": {"name": tc["name"], "arguments": tc["args"]}}
                    for tc in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "content": text, "tool_call_id": message.tool_call_id})
        else:
            out.append({"role": getattr(message, "role", "user"), "content": text})
    return out


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def _as_call(payload: Any, *, known: frozenset[str] | None) -> ToolCall | None:
    """A ToolCall from a decoded `{"name", "arguments"}` object, or None when it does not fit."""
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or not payload["name"]:
        return None
    if known is not None and payload["name"] not in known:
        return None
    args = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(name=payload["name"], args=args, id=_new_id(), type="tool_call")


def _decode(body: str) -> Any:
    body = body.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except ValueError:
        return None


def parse_tool_calls(text: str, *, tool_names: Iterable[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Split a reply into (remaining text, tool calls).

    Well-formed `<tool_call>` blocks become calls and are removed from the text; malformed ones stay as text.
    Small models sometimes drop the tags and answer with the bare JSON object: that counts as a call only
    when its name is one of `tool_names`, so ordinary JSON answers are never mistaken for calls.
    """
    known = frozenset(tool_names) if tool_names is not None else None
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        call = _as_call(_decode(match.group(1)), known=None)
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    remaining = _BLOCK.sub(take, text)
    if not calls and known and OPEN_TAG not in text:
        bare = _bare_calls(text, known=known)
        if bare:
            return "", bare
    return (remaining.strip() if calls else text), calls


def _bare_calls(text: str, *, known: frozenset[str]) -> list[ToolCall]:
    """Calls from a reply that is only JSON: one object, a list of objects, or one object per line."""
    payload = _decode(text)
    if payload is not None:
        items = payload if isinstance(payload, list) else [payload]
    else:
        items = [_decode(line) for line in text.strip().splitlines() if line.strip()]
    calls = [_as_call(item, known=known) for item in items]
    if not calls or any(call is None for call in calls):
        return []
    return [call for call in calls if call is not None]


def _held_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ToolCallStreamSplitter:
    """Streams plain text through while holding back anything that may turn out to be a tool call.

    Text before a `<tool_call>` tag is released as it arrives; from the tag on (or the whole reply when it
    opens like bare JSON) it is held until `finish()`, which parses it.
    """

    def __init__(self, tool_names: Iterable[str]) -> None:
        self._names = frozenset(tool_names)
        self._text = ""
        self._released = 0
        self._holding = False

    def feed(self, piece: str) -> str:
        """Add generated text; return the part that is safe to show now."""
        self._text += piece
        if self._holding:
            return ""
        if self._released == 0:
            head = self._text.lstrip()
            if not head:
                return ""
            if head[0] in "{[`":
                self._holding = True
                return ""
        tag_at = self._text.find(OPEN_TAG, self._released)
        if tag_at >= 0:
            self._holding = True
            end = tag_at
        else:
            end = len(self._text) - _held_suffix(self._text, OPEN_TAG)
        out, self._released = self._text[self._released : end], max(end, self._released)
        return out

    def finish(self) -> tuple[str, list[ToolCall]]:
        """The rest of the text (if any) and the tool calls found in the held-back part."""
        rest = self._text[self._released :]
        self._released = len(self._text)
        remaining, calls = parse_tool_calls(rest, tool_names=self._names)
        return remaining, calls
