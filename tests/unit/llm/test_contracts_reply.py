"""Reading LLM replies: pure data is parsed in-process, code is handed to the sandbox, junk becomes feedback."""

from __future__ import annotations

import json

import pytest

from backend.llm.contracts.reply import MAX_REPLY_CHARS, parse_reply


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ('{"label": "tech"}', {"label": "tech"}),
        ('```json\n{"label": "tech"}\n```', {"label": "tech"}),
        ("[1, 2, 3]", [1, 2, 3]),
        ('"plain string"', "plain string"),
        ("Sure! The answer is {\"label\": \"tech\"} as requested.", {"label": "tech"}),
    ],
)
def test_json_replies_take_the_json_path(reply: str, value: object) -> None:
    parsed = parse_reply(reply)
    assert parsed.path == "json"
    assert json.loads(parsed.value_json or "") == value


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("llm_output = {'label': 'tech', 'score': -0.5}", {"label": "tech", "score": -0.5}),
        ("```python\nllm_output = ('a', None, True)\n```", ["a", None, True]),
        ('llm_output = {"ok": true, "n": null}', {"ok": True, "n": None}),
        ("llm_output: list[int] = [1, 2]", [1, 2]),
        ("Here you go:\nllm_output = 'x'", "x"),
        ("'single quoted'", "single quoted"),
        ("```python\nllm_output = 'unclosed fence'", "unclosed fence"),
    ],
)
def test_literal_assignments_are_parsed_without_running_code(reply: str, value: object) -> None:
    parsed = parse_reply(reply)
    assert parsed.path in {"literal", "json"}
    assert json.loads(parsed.value_json or "") == value


@pytest.mark.parametrize(
    "reply",
    [
        "llm_output = sorted(['b', 'a'])",
        "import math\nllm_output = math.sqrt(4)",
        "llm_output = {'n': 2 + 2}",
        "x = 1\nllm_output = x",
        "llm_output = __import__('os').getcwd()",
    ],
)
def test_anything_that_computes_goes_to_the_sandbox(reply: str) -> None:
    parsed = parse_reply(reply)
    assert parsed.path == "sandbox"
    assert parsed.code == reply
    assert parsed.value_json is None


def test_the_fenced_block_that_assigns_llm_output_is_chosen() -> None:
    reply = "```python\nimport math\n```\ntext\n```python\nllm_output = math.pi\n```"
    assert parse_reply(reply).code == "llm_output = math.pi"


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        ("", "empty"),
        ("llm_output = [1, 2", "SyntaxError"),
        ("print('hello')", "never assigns `llm_output`"),
        ("sports", "never assigns `llm_output`"),
        ("llm_output = {(1, 2): 'tuple key'}", "not JSON data"),
        ("x" * (MAX_REPLY_CHARS + 1), "longer than"),
    ],
)
def test_unusable_replies_explain_why(reply: str, fragment: str) -> None:
    parsed = parse_reply(reply)
    assert parsed.path is None
    assert fragment in (parsed.error or "")


def test_deeply_nested_reply_is_rejected_not_crashing() -> None:
    parsed = parse_reply("llm_output = " + "[" * 5000 + "]" * 5000)
    assert parsed.path is None
    assert parsed.error
