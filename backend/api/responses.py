"""OpenAPI response declarations shared by routes whose errors do not fit FastAPI's defaults."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ValidationIssue(BaseModel):
    """One problem of a request FastAPI could not validate (the items of its standard 422 body)."""

    loc: list[str | int]
    msg: str
    type: str


class Refusal(BaseModel):
    """A 422 body: FastAPI's list of validation issues, or one sentence from the route (e.g. "file is empty")."""

    detail: str | list[ValidationIssue] = Field(description="What is wrong with the request.")


def unprocessable(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a route that answers 422 both ways; declaring it stops FastAPI documenting only
    the list shape, which made the route's own string answers violate its schema."""
    return {422: {"model": Refusal, "description": description}}
