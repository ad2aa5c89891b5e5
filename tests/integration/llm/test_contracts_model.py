"""`@llm_func` with the real 0.5B embedded model and the real sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from backend.core.settings import PROJECT_ROOT, Settings
from backend.llm.contracts import SandboxSnippetRunner, llm_func, record_llm_calls, use_llm, use_runner
from backend.llm.model_files import model_path
from backend.sandbox.manager import SandboxManager

pytestmark = pytest.mark.model

MODEL = "qwen2.5-coder-0.5b"
LABELS = ["sports", "politics", "technology", "food", "weather", "health"]


class Category(BaseModel):
    label: str


def label_allowed(output: Category) -> None:
    assert output.label in LABELS, f"label must be exactly one of {LABELS}"


@llm_func(output_model=Category, post_hooks=[label_allowed], max_retries=2)
async def categorize(text: str) -> Category:
    """Categorise the text into exactly one label from {LABELS}.

    Text: {text}"""
    raise NotImplementedError


class Plan(BaseModel):
    steps: list[str]


def two_to_four_steps(output: Plan) -> None:
    assert 2 <= len(output.steps) <= 4, f"the plan must have 2 to 4 steps, it has {len(output.steps)}"


@llm_func(post_hooks=[two_to_four_steps], max_retries=2)
async def plan(question: str) -> Plan:
    """Plan 2 to 4 short steps to answer the question: {question}"""
    raise NotImplementedError


@pytest.fixture(scope="module")
def chat_model() -> Iterator[BaseChatModel]:
    from backend.llm.factory import get_chat_model

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=PROJECT_ROOT / "data",
        llm_providers=["llamacpp"],
        embedded_model=MODEL,
        llm_context_tokens=4096,
        llm_temperature=0.0,
    )
    if not model_path(MODEL, models_dir=settings.models_dir).is_file():
        pytest.skip(f"{MODEL} is not assembled (python -m backend.llm.model_files assemble --model {MODEL})")
    yield get_chat_model(settings=settings, provider="llamacpp")


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[SandboxSnippetRunner]:
    manager = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": 0}))
    yield SandboxSnippetRunner(manager=manager)
    await manager.shutdown()


async def test_small_model_labels_short_texts_within_the_allowed_set(
    chat_model: BaseChatModel, runner: SandboxSnippetRunner
) -> None:
    texts = {
        "The striker scored twice in the final minutes of the match.": "sports",
        "Heavy rain and strong winds are expected tomorrow.": "weather",
        "The new phone ships with a faster chip and more memory.": "technology",
        "Doctors recommend getting the flu vaccine every autumn.": "health",
    }
    with use_llm(chat_model), use_runner(runner), record_llm_calls() as calls:
        labels = [(await categorize(text)).label for text in texts]
    assert set(labels) <= set(LABELS)
    assert sum(got == want for got, want in zip(labels, texts.values(), strict=True)) >= 3, labels
    assert all(call.succeeded for call in calls)


async def test_small_model_fills_a_nested_model_that_passes_its_post_hook(chat_model: BaseChatModel) -> None:
    with use_llm(chat_model), record_llm_calls() as calls:
        result = await plan("What is the average fare per passenger class in titanic.csv?")
    assert 2 <= len(result.steps) <= 4
    assert all(isinstance(step, str) and step.strip() for step in result.steps)
    assert calls[0].get_attempts_history()[-1].path in {"json", "literal", "sandbox"}
