"""The answer template shown to the model: real keys and typed holes, no sample values to copy."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, TypeAdapter

from backend.llm.contracts.prompt import output_schema
from backend.llm.contracts.shape import answer_template


class Step(BaseModel):
    tool: Literal["python", "rag"]
    goal: str


class Plan(BaseModel):
    steps: list[Step]
    note: str | None = None
    weights: dict[str, float] = {}


@pytest.mark.parametrize(
    ("output_type", "template"),
    [
        (float, "<number>"),
        (int, "<integer>"),
        (bool, "<True/False>"),
        (list[str], "[<string>, ...]"),
        (tuple[int, str], "[<integer>, <string>]"),
        (Literal["a", "b"], '<"a" | "b">'),
        (
            Plan,
            '{"steps": [{"tool": <"python" | "rag">, "goal": <string>}, ...], "note": <string> or None, '
            '"weights": {<string>: <number>, ...}}',
        ),
    ],
)
def test_template_follows_the_schema(output_type: Any, template: str) -> None:
    assert answer_template(output_schema(TypeAdapter(output_type))) == template


def test_titles_are_stripped_but_a_field_named_title_is_kept() -> None:
    class Doc(BaseModel):
        title: str

    schema = output_schema(TypeAdapter(Doc))
    assert "title" in schema["properties"] and "title" not in schema
    assert answer_template(schema) == '{"title": <string>}'
