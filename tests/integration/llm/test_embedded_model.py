"""The real packaged 0.5B model through the provider chain: answers, streams, calls tools, reuses its cache."""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from backend.core.settings import PROJECT_ROOT, Settings
from backend.llm.factory import get_chat_model
from backend.llm.health import HealthRegistry
from backend.llm.llamacpp import ChatLlamaCpp
from backend.llm.model_files import assemble

pytestmark = pytest.mark.model

TEST_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def model_settings() -> Iterator[Settings]:
    data_dir = PROJECT_ROOT / "data"
    assemble(TEST_MODEL, models_dir=data_dir / "models", progress=False)  # no-op when already verified
    yield Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        llm_providers=["llamacpp"],
        embedded_model=TEST_MODEL,  # default context size: the same shared Llama as other suites' model tests
        llm_max_tokens=64,
        llm_temperature=0.0,
    )


@pytest.fixture(scope="module")
def chain(model_settings: Settings) -> BaseChatModel:
    return get_chat_model(settings=model_settings, registry=HealthRegistry())


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers exactly."""
    return a * b


def test_embedded_model_answers_a_short_prompt(chain: BaseChatModel) -> None:
    reply = chain.invoke([HumanMessage("What is the capital of France? Answer with one word.")])
    assert "paris" in str(reply.content).lower()
    assert reply.response_metadata["llm_provider"] == "llamacpp"


def test_streaming_yields_several_chunks(chain: BaseChatModel) -> None:
    pieces = [c.text for c in chain.stream([HumanMessage("Count from 1 to 10, separated by spaces.")]) if c.text]
    assert len(pieces) >= 5
    assert "1 2 3" in "".join(pieces)


async def test_async_streaming_through_the_chain(chain: BaseChatModel) -> None:
    pieces = [c.text async for c in chain.astream([HumanMessage("Say hello.")]) if c.text]
    assert len(pieces) >= 2


def test_tool_call_round_trip_through_bind_tools(chain: BaseChatModel) -> None:
    bound = chain.bind_tools([multiply])
    question = HumanMessage("What is 1234 * 5678? Use the multiply tool.")
    first = bound.invoke([question])
    assert isinstance(first, AIMessage)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("multiply", {"a": 1234, "b": 5678})]
    call = first.tool_calls[0]
    result = ToolMessage(str(multiply.invoke(call["args"])), tool_call_id=call["id"])
    second = bound.invoke([question, first, result])
    # The 0.5B model reads the tool result but rarely phrases a final answer; the 1.5B does. What must hold
    # here is that the history with a tool call and its result renders and yields a well-formed reply.
    assert isinstance(second, AIMessage)
    assert second.content or second.tool_calls


def test_stable_system_prompt_is_not_re_evaluated(model_settings: Settings) -> None:
    model = ChatLlamaCpp(
        model_path=str(model_settings.models_dir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        n_ctx=model_settings.llm_context_tokens,
        n_threads=model_settings.llm_threads,
        max_tokens=4,
        temperature=0.0,
    )
    system = SystemMessage("You are a data analyst. " + " ".join(f"Rule {i}: check column {i}." for i in range(40)))
    ctx = model._shared().llama._ctx.ctx

    def prompt_tokens_evaluated(question: str) -> int:
        before = llama_cpp.llama_perf_context(ctx).n_p_eval
        model.invoke([system, HumanMessage(question)])
        return int(llama_cpp.llama_perf_context(ctx).n_p_eval - before)

    model.invoke([HumanMessage("unrelated warm-up so the cache holds another prompt")])
    first = prompt_tokens_evaluated("What is 2 + 2?")
    second = prompt_tokens_evaluated("Name a colour.")
    assert first > 300
    assert second < 30
