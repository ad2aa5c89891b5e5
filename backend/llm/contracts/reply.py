"""Turn an LLM reply into JSON data in-process when it is pure data, or into a snippet for the sandbox.

Only parsing happens here (`json.loads`, `ast.parse`, `ast.literal_eval` on a whitelisted literal tree):
nothing the model wrote is executed in this process. Anything that is real code goes to the sandbox.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from backend.llm.contracts.context import AnswerPath

OUTPUT_NAME = "llm_output"
"""The variable the snippet must assign."""
MAX_REPLY_CHARS = 20_000
"""Longer replies are rejected unparsed (a structured answer is short; this also bounds parser work)."""

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_ASSIGN_LINE = re.compile(rf"^[ \t]*{OUTPUT_NAME}\b", re.MULTILINE)


@dataclass(frozen=True)
class ParsedReply:
    """`path` is None when the reply is unusable; then `error` says why in words the model can act on."""

    path: AnswerPath | None
    value_json: str | None = None
    code: str | None = None
    error: str | None = None


def parse_reply(text: str) -> ParsedReply:
    """Classify a reply: JSON data, `llm_output = <literal>`, a code snippet, or an error to feed back."""
    text = text.strip()
    if not text:
        return ParsedReply(None, error="the reply was empty")
    if len(text) > MAX_REPLY_CHARS:
        return ParsedReply(None, error=f"the reply is longer than {MAX_REPLY_CHARS} characters; answer briefly")
    fenced = _pick_block(text)
    body = (fenced if fenced is not None else text).strip()
    as_json = _json_text(body)
    if as_json is not None:
        return ParsedReply("json", value_json=as_json)
    tree, body, syntax_error = _parse_python(body, prose_allowed=fenced is None)
    if tree is None:
        embedded = _embedded_json(text)
        if embedded is not None:
            return ParsedReply("json", value_json=embedded)
        return ParsedReply(None, code=body, error=syntax_error)
    return _classify(tree, body)


def _pick_block(text: str) -> str | None:
    """The first fenced block that mentions `llm_output`, else the first fenced block."""
    blocks = [match.group(2) for match in _FENCE.finditer(text)]
    for block in blocks:
        if OUTPUT_NAME in block:
            return block
    return blocks[0] if blocks else None


def _json_text(body: str) -> str | None:
    """`body` itself when it is a JSON document (small models often answer in JSON)."""
    if not body or body[0] not in '{["-0123456789tfn':
        return None
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return None
    return body


def _embedded_json(text: str) -> str | None:
    """A JSON object or array inside prose ("Here it is: {...}"), decoded from the first brace."""
    decoder = json.JSONDecoder()
    starts = sorted(i for i in (text.find("{"), text.find("[")) if i >= 0)
    for start in starts:
        try:
            _, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        return text[start:end]
    return None


def _parse_python(body: str, *, prose_allowed: bool) -> tuple[ast.Module | None, str, str]:
    """Parse the snippet; without a fence, retry from the first `llm_output` line (prose before the code)."""
    try:
        return ast.parse(body), body, ""
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        error = _syntax_message(exc)
    if prose_allowed and (match := _ASSIGN_LINE.search(body)) and match.start() > 0:
        tail = body[match.start() :].strip()
        try:
            return ast.parse(tail), tail, ""
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    return None, body, error


def _syntax_message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"the snippet is not valid Python: SyntaxError: {exc.msg}{where}"
    return f"the snippet could not be parsed: {type(exc).__name__}"


def _classify(tree: ast.Module, body: str) -> ParsedReply:
    statements = tree.body
    if len(statements) == 1:
        only = statements[0]
        bare_value = isinstance(only, ast.Expr)  # a lone expression is taken as the answer
        assigned = isinstance(only, ast.Assign | ast.AnnAssign) and _assigns_output(_targets(only))
        value_node = getattr(only, "value", None) if bare_value or assigned else None
        if value_node is not None and _is_literal(value_node):
            return _literal_reply(value_node, body)
        if value_node is not None and (as_json := _json_text(ast.get_source_segment(body, value_node) or "")):
            return ParsedReply("json", value_json=as_json, code=body)  # `llm_output = {"ok": true}`
    if not any(isinstance(node, ast.Name) and node.id == OUTPUT_NAME for node in ast.walk(tree)):
        return ParsedReply(None, code=body, error=f"the snippet never assigns `{OUTPUT_NAME}`")
    return ParsedReply("sandbox", code=body)


def _targets(statement: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return statement.targets if isinstance(statement, ast.Assign) else [statement.target]


def _assigns_output(targets: list[ast.expr]) -> bool:
    return len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == OUTPUT_NAME


def _is_literal(node: ast.expr) -> bool:
    """Only JSON-like data: str/int/float/bool/None constants, signed numbers, lists, tuples and dicts of them."""
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, str | int | float)
    if isinstance(node, ast.List | ast.Tuple):
        return all(_is_literal(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(key is not None and _is_literal(key) for key in node.keys) and all(
            _is_literal(value) for value in node.values
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, int | float)
    return False


def _literal_reply(node: ast.expr, body: str) -> ParsedReply:
    try:
        value: Any = ast.literal_eval(node)
        return ParsedReply("literal", value_json=json.dumps(value), code=body)
    except (TypeError, ValueError) as exc:
        return ParsedReply(None, code=body, error=f"`{OUTPUT_NAME}` is not JSON data: {exc}")
