"""Which chat model answers an `@llm_func`: `use_llm(model)` for a block, else the factory's chain per provider."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

_current_llm: contextvars.ContextVar[BaseChatModel | None] = contextvars.ContextVar("llm_func_llm", default=None)
_default_llms: dict[str | None, BaseChatModel] = {}
_default_llms_lock = threading.Lock()


@contextmanager
def use_llm(model: BaseChatModel) -> Iterator[BaseChatModel]:
    """Answer every `@llm_func` called inside the block with `model` (overrides the function's `provider=`)."""
    token = _current_llm.set(model)
    try:
        yield model
    finally:
        _current_llm.reset(token)


def resolve_llm(provider: str | None) -> BaseChatModel:
    """The model set by `use_llm`, else the factory's chain for `provider` (built once per provider)."""
    model = _current_llm.get()
    if model is not None:
        return model
    with _default_llms_lock:
        if provider not in _default_llms:
            from backend.core.settings import get_settings
            from backend.llm.factory import get_chat_model

            _default_llms[provider] = get_chat_model(settings=get_settings(), provider=provider)
        return _default_llms[provider]
