"""Prompts of `@llm_func`: a system message fixed per function (llama.cpp reuses its cached prefix), then the task.

Order matters for the prefix cache: rules shared by every function, then this function's signature and output
schema, then the docstring with this call's `{placeholders}` filled in, then the remaining inputs.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_json

from backend.llm.contracts.reply import OUTPUT_NAME
from backend.llm.contracts.shape import answer_template

MAX_ARGUMENT_CHARS = 12_000
"""An input longer than this is cut (with a visible marker) so one huge argument cannot flood the context."""
MAX_ECHO_CHARS = 400
"""How much of a rejected value is quoted back to the model."""
MAX_REPORTED_ERRORS = 5
"""Validation errors listed per attempt; the rest are counted."""
SKIPPED_INPUTS = frozenset({"self", "cls"})

RULES = f"""You are the body of a Python function. Read the task and answer with ONLY a minimal Python snippet \
that assigns the function's return value to `{OUTPUT_NAME}`, in one ```python block. \
`{OUTPUT_NAME}` must be JSON data (str, int, float, bool, None, list, dict) that matches the output JSON schema \
and the answer format below, with every <hole> filled in. \
If the value needs arithmetic, counting or text processing, compute it with standard-library Python (the \
function's arguments are defined as variables); otherwise write it as a literal. \
Do not explain, do not print, do not read files."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(![rsa])?(?::([^{}]*))?\}")


def system_prompt(*, name: str, signature: str, output_schema: Mapping[str, Any]) -> str:
    """The per-function constant part of the prompt."""
    schema = json.dumps(output_schema, ensure_ascii=False)
    template = answer_template(output_schema)
    return (
        f"{RULES}\n\nFunction: {signature}\nOutput JSON schema: {schema}\n"
        f"Answer format:\n```python\n{OUTPUT_NAME} = {template}\n```"
    )


def render_signature(func: Callable[..., Any], name: str, output_type: Any) -> str:
    """`def name(a: int, b: str = 'x') -> Out` with resolved, readable type names."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to the raw annotation text
        hints = {}
    params = []
    for param in signature.parameters.values():
        annotation = hints.get(param.name, param.annotation)
        text = param.name if annotation is inspect.Parameter.empty else f"{param.name}: {type_name(annotation)}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    return f"def {name}({', '.join(params)}) -> {type_name(output_type)}"


def type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def output_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The JSON schema without auto-generated titles (fewer tokens for the same information)."""
    stripped: dict[str, Any] = _strip_titles(adapter.json_schema())
    return stripped


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node


def fill_placeholders(
    template: str, *, inputs: Mapping[str, Any], namespace: Mapping[str, Any]
) -> tuple[str, set[str]]:
    """Replace `{name}`, `{name!r}`, `{name:spec}` by an input (first) or a module global; other braces stay.

    Returns the text and the input names it used (those are not repeated in the inputs section).
    """
    used: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name, conversion, spec = match.group(1), match.group(2), match.group(3) or ""
        if name in inputs:
            value, is_input = inputs[name], True
        elif name in namespace:
            value, is_input = namespace[name], False
        else:
            return match.group(0)
        if conversion == "!r":
            value = repr(value)
        elif conversion == "!a":
            value = ascii(value)
        try:
            text = format(value, spec)
        except (TypeError, ValueError):
            return match.group(0)
        if is_input:
            used.add(name)
        return _clip(text)

    return _PLACEHOLDER.sub(replace, template), used


def task_prompt(*, docstring: str, inputs: Mapping[str, Any], namespace: Mapping[str, Any]) -> str:
    """The per-call part: the filled-in docstring, then every input the docstring did not mention."""
    task, used = fill_placeholders(docstring, inputs=inputs, namespace=namespace)
    rest = {k: v for k, v in inputs.items() if k not in used and k not in SKIPPED_INPUTS}
    if not rest:
        return task
    lines = [f"{name} = {render_value(value)}" for name, value in rest.items()]
    return f"{task}\n\nInputs:\n" + "\n".join(lines)


def render_value(value: Any) -> str:
    """Inputs as JSON (unambiguous for the model); multi-line text as a quoted block."""
    if isinstance(value, str) and "\n" in value:
        return '"""\n' + _clip(value) + '\n"""'
    if isinstance(value, BaseModel):
        return _clip(value.model_dump_json())
    return _clip(to_json(value, fallback=repr).decode())


def _clip(text: str, limit: int = MAX_ARGUMENT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"…[{len(text) - limit} more characters cut]"


def feedback_prompt(*, attempt: int, error: str, repeated: bool = False) -> str:
    """What the model reads after a rejected attempt; a repeated answer gets a nudge to change approach."""
    nudge = (
        "You repeated an answer that was already rejected: do something different "
        "(for example compute the value with Python from the arguments).\n"
        if repeated
        else ""
    )
    return (
        f"Attempt {attempt} was rejected: {error}\n{nudge}"
        f"Reply again with only the corrected ```python block assigning `{OUTPUT_NAME}`."
    )


def validation_feedback(exc: ValidationError) -> str:
    """Pydantic errors as short `field: problem (got value)` lines, without documentation URLs."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "the value"
        got = error.get("input")
        shown = "" if error["type"] == "missing" else f" (got {echo(got)})"
        parts.append(f"{where}: {error['msg']}{shown}")
    more = f"; and {len(errors) - MAX_REPORTED_ERRORS} more" if len(errors) > MAX_REPORTED_ERRORS else ""
    return "it does not match the output schema: " + "; ".join(parts) + more


def echo(value: Any) -> str:
    """A short rendering of a rejected value for feedback."""
    text = value.model_dump_json() if isinstance(value, BaseModel) else to_json(value, fallback=repr).decode()
    return _clip(text, MAX_ECHO_CHARS)


def render_messages(messages: list[BaseMessage]) -> str:
    """The prompt as plain text for attempt records."""
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
    return "\n\n".join(f"[{roles.get(type(m), m.type)}]\n{m.content}" for m in messages)
