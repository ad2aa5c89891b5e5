"""`@llm_func`: validation, post-hooks, retries with feedback, history — driven by a scripted model."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel

from backend.llm.contracts import (
    LLMCallContext,
    MaxRetriesExceededError,
    ScriptedSnippetRunner,
    SnippetOutcome,
    ValidationFailedError,
    contract_of,
    llm_func,
    record_llm_calls,
    use_llm,
    use_runner,
)
from backend.llm.fake import ScriptedChatModel

LABELS = ["sports", "politics", "tech"]


class Category(BaseModel):
    label: Literal["sports", "politics", "tech"]
    confidence: float = 1.0


def label_is_not_tech_for_football(output: Category, text: str) -> None:
    assert not (output.label == "tech" and "football" in text), "football is sports, not tech"


@llm_func(output_model=Category, post_hooks=[label_is_not_tech_for_football], max_retries=2)
def categorize(text: str) -> Category:
    """Pick the label from {LABELS} that fits the text: {text}"""
    raise NotImplementedError


def human_texts(model: ScriptedChatModel) -> list[str]:
    return [str(call[-1].content) for call in model.calls]


def test_success_on_first_try_returns_the_validated_model() -> None:
    model = ScriptedChatModel(replies=['{"label": "sports", "confidence": 0.9}'])
    with use_llm(model):
        result = categorize("The football match ended 2-1")
    assert result == Category(label="sports", confidence=0.9)
    assert len(model.calls) == 1


def test_literal_assignment_is_parsed_without_the_sandbox() -> None:
    model = ScriptedChatModel(replies=['```python\nllm_output = {"label": "politics"}\n```'])
    runner = ScriptedSnippetRunner()
    with use_llm(model), use_runner(runner):
        result = categorize("The senate passed the bill")
    assert result.label == "politics"
    assert runner.codes == []


def test_code_snippet_is_run_by_the_snippet_runner() -> None:
    code = "labels = ['tech']\nllm_output = {'label': labels[0]}"
    model = ScriptedChatModel(replies=[f"```python\n{code}\n```"])
    runner = ScriptedSnippetRunner(outcomes=[SnippetOutcome(value_json='{"label": "tech"}')])
    with use_llm(model), use_runner(runner):
        result = categorize("New GPU released")
    assert result.label == "tech"
    assert runner.codes == [code]
    assert runner.inputs == [{"text": "New GPU released"}]


def test_post_hook_failure_is_fed_back_then_the_next_answer_succeeds() -> None:
    model = ScriptedChatModel(replies=['{"label": "tech"}', '{"label": "sports"}'])
    with use_llm(model):
        result = categorize("football is back")
    assert result.label == "sports"
    feedback = human_texts(model)[1]
    assert "label_is_not_tech_for_football" in feedback
    assert "football is sports, not tech" in feedback


def test_invalid_json_type_is_fed_back_then_the_next_answer_succeeds() -> None:
    model = ScriptedChatModel(replies=['{"label": "weather"}', 'llm_output = {"label": "tech"}'])
    with use_llm(model):
        result = categorize("A new phone")
    assert result.label == "tech"
    feedback = human_texts(model)[1]
    assert "label: Input should be 'sports', 'politics' or 'tech'" in feedback
    assert '"weather"' in feedback


def test_repeating_a_rejected_answer_gets_a_nudge_to_change_approach() -> None:
    model = ScriptedChatModel(replies=['{"label": "weather"}', '{"label": "weather"}', '{"label": "tech"}'])
    with use_llm(model):
        assert categorize("chips").label == "tech"
    first_feedback, second_feedback = human_texts(model)[1:]
    assert "You repeated an answer" not in first_feedback
    assert "You repeated an answer that was already rejected" in second_feedback


def test_unparseable_reply_is_fed_back() -> None:
    model = ScriptedChatModel(replies=["I think it is sports.", '{"label": "sports"}'])
    with use_llm(model):
        assert categorize("goal!").label == "sports"
    assert "the snippet is not valid Python: SyntaxError" in human_texts(model)[1]


def test_sandbox_error_in_the_snippet_is_fed_back() -> None:
    model = ScriptedChatModel(replies=["llm_output = {'label': LABELZ[0]}", "llm_output = {'label': 'tech'}"])
    runner = ScriptedSnippetRunner(
        outcomes=[SnippetOutcome(error="the snippet raised NameError: name 'LABELZ' is not defined (line 1)")]
    )
    with use_llm(model), use_runner(runner):
        assert categorize("chips").label == "tech"
    assert "NameError: name 'LABELZ' is not defined" in human_texts(model)[1]


def test_max_retries_exceeded_carries_every_attempt() -> None:
    model = ScriptedChatModel(replies=['{"label": "weather"}'], cycle=True)
    with use_llm(model), pytest.raises(MaxRetriesExceededError) as caught:
        categorize("rain tomorrow")
    context = caught.value.context
    assert isinstance(context, LLMCallContext)
    assert (context.func_name, context.max_retries, context.current_attempt_number) == ("categorize", 2, 3)
    assert len(context.get_attempts_history()) == 3 == len(model.calls)
    assert all(a.error_kind == "validation" for a in context.get_attempts_history())


def test_without_retries_the_first_failure_raises_validation_failed() -> None:
    @llm_func(output_model=Category, max_retries=0)
    def strict(text: str) -> Category:
        """Label {text}."""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['{"label": "weather"}'])
    with use_llm(model), pytest.raises(ValidationFailedError) as caught:
        strict("rain")
    assert not isinstance(caught.value, MaxRetriesExceededError)
    assert len(caught.value.context.get_attempts_history()) == 1


async def test_async_function_is_awaited_and_validated() -> None:
    @llm_func(max_retries=1)
    async def count_words(text: str) -> int:
        """How many words are in the text?"""
        raise NotImplementedError

    model = ScriptedChatModel(replies=["```python\nllm_output = 'three'\n```", "llm_output = 3"])
    with use_llm(model):
        assert await count_words("one two three") == 3
    assert "Input should be a valid integer" in human_texts(model)[1]


async def test_sync_function_works_inside_a_running_event_loop() -> None:
    model = ScriptedChatModel(replies=['{"label": "tech"}'])
    with use_llm(model):
        result = categorize("laptops")
    assert result.label == "tech"


def test_placeholders_take_arguments_and_module_globals_and_leave_other_braces() -> None:
    @llm_func(max_retries=0)
    def pick(text: str, limit: int) -> list[str]:
        """Choose at most {limit} labels from {LABELS!r} for {text}. Example answer: {"labels": [...]}, {unknown}"""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['["tech"]'])
    with use_llm(model):
        assert pick("chips and phones", 2) == ["tech"]
    task = human_texts(model)[0]
    assert "Choose at most 2 labels from ['sports', 'politics', 'tech'] for chips and phones." in task
    assert 'Example answer: {"labels": [...]}, {unknown}' in task
    assert "Inputs:" not in task  # every input was already placed in the docstring


def test_inputs_not_in_the_docstring_are_listed_as_json() -> None:
    @llm_func(max_retries=0)
    def summarize(text: str, words: int = 5) -> str:
        """Summarize the text."""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['"short"'])
    with use_llm(model):
        summarize('say "hi"')
    assert human_texts(model)[0].endswith('Inputs:\ntext = "say \\"hi\\""\nwords = 5')


def test_system_prompt_is_identical_across_calls_with_different_arguments() -> None:
    model = ScriptedChatModel(replies=['{"label": "tech"}', '{"label": "politics"}'])
    with use_llm(model):
        categorize("chips")
        categorize("votes")
    first, second = (call[0].content for call in model.calls)
    assert first == second == contract_of(categorize).system_prompt
    assert "def categorize(text: str) -> Category" in first
    assert 'llm_output = {"label": <"sports" | "politics" | "tech">, "confidence": <number>}' in first
    assert '"enum": ["sports", "politics", "tech"]' in first


def test_attempt_history_records_prompt_reply_code_and_outcome() -> None:
    replies = ["llm_output = {'label': 'tech'}", "```python\nllm_output = {'label': 'sports'}\n```"]
    model = ScriptedChatModel(replies=replies)
    with use_llm(model), record_llm_calls() as calls:
        categorize("football news")
    [context] = calls
    first, second = context.get_attempts_history()
    assert context.succeeded and context.current_attempt_number == 2
    assert first.attempt_number == 1 and "[system]" in first.prompt and "football news" in first.prompt
    assert first.raw_response == replies[0]
    assert first.code == "llm_output = {'label': 'tech'}" and first.path == "literal"
    assert first.error_kind == "hook" and first.result is None
    assert "Attempt 1 was rejected" in second.prompt and second.error is None
    assert second.result == Category(label="sports")
    assert second.as_dict()["result"] == repr(Category(label="sports"))


def test_hook_returning_false_rejects_and_hooks_receive_only_the_inputs_they_name() -> None:
    seen: list[dict[str, object]] = []

    def short_enough(output: str, max_len: int) -> bool:
        seen.append({"max_len": max_len})
        return len(output) <= max_len

    @llm_func(post_hooks=[short_enough], max_retries=1)
    def title(text: str, max_len: int) -> str:
        """A title for {text} of at most {max_len} characters."""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['"a very long title indeed"', '"short"'])
    with use_llm(model):
        assert title("a story", 10) == "short"
    assert seen == [{"max_len": 10}, {"max_len": 10}]
    assert "check `short_enough` failed" in human_texts(model)[1]


def test_assert_without_message_reports_the_failing_line() -> None:
    def no_digits(output: str, **inputs: object) -> None:
        assert not any(ch.isdigit() for ch in output)

    @llm_func(post_hooks=[no_digits], max_retries=1)
    def word(text: str) -> str:
        """A word for {text}."""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['"r2d2"', '"robot"'])
    with use_llm(model):
        assert word("droid") == "robot"
    assert "assert not any(ch.isdigit() for ch in output)" in human_texts(model)[1]


def test_other_hook_exceptions_propagate_without_retry() -> None:
    def broken(output: str) -> None:
        raise KeyError("bug in the hook")

    @llm_func(post_hooks=[broken])
    def echo(text: str) -> str:
        """Repeat {text}."""
        raise NotImplementedError

    model = ScriptedChatModel(replies=['"x"'], cycle=True)
    with use_llm(model), pytest.raises(KeyError):
        echo("x")
    assert len(model.calls) == 1


def test_wrong_arguments_raise_type_error_before_any_llm_call() -> None:
    model = ScriptedChatModel(replies=['{"label": "tech"}'])
    with use_llm(model), pytest.raises(TypeError):
        categorize("a", "b")  # type: ignore[call-arg]
    assert model.calls == []


def test_a_stub_without_output_model_or_return_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match="output_model"):

        @llm_func
        def untyped(text):  # type: ignore[no-untyped-def]
            """Nothing to validate against."""


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        llm_func(max_retries=-1)(lambda: None)


def test_provider_is_passed_to_the_factory_when_no_model_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.llm import factory
    from backend.llm.contracts import chat

    asked: list[str | None] = []
    model = ScriptedChatModel(replies=['"ok"'])

    def fake_factory(*, settings: object, provider: str | None = None) -> ScriptedChatModel:
        asked.append(provider)
        return model

    monkeypatch.setattr(factory, "get_chat_model", fake_factory)
    monkeypatch.setattr(chat, "_default_llms", {})

    @llm_func(provider="special")
    def greet(name: str) -> str:
        """Greet {name}."""
        raise NotImplementedError

    assert greet("Ada") == "ok"
    assert asked == ["special"]


def test_use_llm_overrides_the_functions_provider() -> None:
    @llm_func(provider="ollama")
    def greet(name: str) -> str:
        """Greet {name}."""
        raise NotImplementedError

    with use_llm(ScriptedChatModel(replies=['"hello"'])):
        assert greet("Ada") == "hello"


async def test_concurrent_async_calls_keep_their_own_models() -> None:
    @llm_func(max_retries=0)
    async def answer(q: str) -> str:
        """Answer {q}."""
        raise NotImplementedError

    async def one(reply: str) -> str:
        with use_llm(ScriptedChatModel(replies=[f'"{reply}"'])):
            return await answer(reply)

    assert await asyncio.gather(one("a"), one("b"), one("c")) == ["a", "b", "c"]
