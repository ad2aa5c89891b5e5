"""A fill-in template of the expected answer (`{"label": <string>}`), derived from the output JSON schema.

Small models copy examples: a generic `{"field": "value"}` made them wrap scalars in a dict. A template with
the real keys and `<type>` holes shows the shape without giving them a value to copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 4
"""Nested models deeper than this are shown as `<object>`."""
MAX_ENUM_SHOWN = 8

_HOLES = {"string": "<string>", "integer": "<integer>", "number": "<number>", "boolean": "<True/False>"}


def answer_template(schema: Mapping[str, Any]) -> str:
    """Python-looking template of the value, e.g. `{"label": <"a" | "b">, "score": <number>}`."""
    return _render(schema, schema, depth=0)


def _render(node: Mapping[str, Any], root: Mapping[str, Any], *, depth: int) -> str:
    node = _resolve(node, root)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        shown = " | ".join(json.dumps(v) for v in node["enum"][:MAX_ENUM_SHOWN])
        return f"<{shown}{' | ...' if len(node['enum']) > MAX_ENUM_SHOWN else ''}>"
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if _resolve(o, root).get("type") != "null"]
            one = _render(options[0], root, depth=depth) if len(options) == 1 else "<any of the schema's options>"
            return f"{one} or None" if len(options) < len(node[key]) else one
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in node:
        return _render_object(node, root, depth=depth)
    if kind == "array":
        if isinstance(node.get("prefixItems"), list):  # tuples
            return "[" + ", ".join(_render(i, root, depth=depth + 1) for i in node["prefixItems"]) + "]"
        items = node.get("items")
        inner = _render(items, root, depth=depth + 1) if isinstance(items, Mapping) else "<value>"
        return f"[{inner}, ...]"
    if kind == "null":
        return "None"
    return _HOLES.get(str(kind), "<value>")


def _render_object(node: Mapping[str, Any], root: Mapping[str, Any], *, depth: int) -> str:
    if depth >= MAX_DEPTH:
        return "<object>"
    properties = node.get("properties")
    if properties:
        fields = [f"{json.dumps(k)}: {_render(v, root, depth=depth + 1)}" for k, v in properties.items()]
        return "{" + ", ".join(fields) + "}"
    extra = node.get("additionalProperties")
    value = _render(extra, root, depth=depth + 1) if isinstance(extra, Mapping) else "<value>"
    return "{<string>: " + value + ", ...}"


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local `$ref` (`#/$defs/Name`); pydantic wraps some in `allOf: [{$ref}]`."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            return target
    return node
