"""Output checks of the coder: free rules, the structured LLM verdict, and reading named answers from output."""

from __future__ import annotations

from backend.llm.fake import ScriptedChatModel
from backend.tools.python_coder.answers import fill_answers
from backend.tools.python_coder.verify import llm_verdict, looks_direct, requested_names, rule_verdict


def test_requested_names_keep_order_without_repeats() -> None:
    assert requested_names("@b[x] then @a[y], again @b[z]") == ["b", "a"]


def test_all_requested_values_printed_passes() -> None:
    verdict = rule_verdict(question="Give @m[v] @s[v]", output="@m[1.5]\n@s[2]", produced_files=[])
    assert verdict is not None and verdict.answers_question


def test_missing_requested_value_fails_naming_it() -> None:
    verdict = rule_verdict(question="Give @m[v] @s[v]", output="@m[1.5]", produced_files=[])
    assert verdict is not None and not verdict.answers_question and "@s[...]" in verdict.reason


def test_python_none_is_not_a_value_but_lowercase_none_is() -> None:
    bad = rule_verdict(question="@kind[v]", output="@kind[None]", produced_files=[])
    good = rule_verdict(question="@kind[v]", output="@kind[none]", produced_files=[])
    assert bad is not None and not bad.answers_question
    assert good is not None and good.answers_question


def test_empty_output_without_files_fails() -> None:
    verdict = rule_verdict(question="Mean?", output="  ", produced_files=[])
    assert verdict is not None and not verdict.answers_question


def test_rules_cannot_judge_a_free_form_question() -> None:
    assert rule_verdict(question="Mean?", output="12.5", produced_files=[]) is None


def test_short_plain_output_is_a_direct_answer() -> None:
    assert looks_direct("mean fare: 32.2")


def test_nan_or_long_output_is_not_a_direct_answer() -> None:
    assert not looks_direct("mean fare: nan")
    assert not looks_direct("\n".join(f"row {i}" for i in range(40)))


async def test_llm_verdict_is_parsed_from_the_model_reply() -> None:
    llm = ScriptedChatModel(replies=['{"answers_question": false, "reason": "std is not population std"}'])
    verdict = await llm_verdict(llm=llm, question="Population std?", code="print(s.std())", output="1.2")
    assert not verdict.answers_question and verdict.reason == "std is not population std"
    assert "Population std?" in str(llm.calls[0][-1].content) and "print(s.std())" in str(llm.calls[0][-1].content)


async def test_fill_answers_reads_named_values_as_text() -> None:
    llm = ScriptedChatModel(replies=['{"mean_age": 39.21}'])
    assert await fill_answers(llm=llm, question="Mean age?", output="Mean age is 39.21", names=["mean_age"]) == {
        "mean_age": "39.21"
    }


async def test_fill_answers_gives_nothing_when_the_model_keeps_inventing_names() -> None:
    llm = ScriptedChatModel(replies=['{"other": 1}'], cycle=True)
    assert await fill_answers(llm=llm, question="Mean age?", output="39.21", names=["mean_age"]) == {}


def test_python_boolean_where_the_question_wants_words_fails() -> None:
    question = 'Is it normal? Format: @is_normal[answer] where answer is "Yes" or "No".'
    verdict = rule_verdict(question=question, output="@is_normal[False]", produced_files=[])
    assert verdict is not None and not verdict.answers_question and "Python boolean" in verdict.reason


def test_python_boolean_is_fine_when_the_question_uses_it() -> None:
    question = "Is it normal? Format: @is_normal[answer] where answer is True or False."
    verdict = rule_verdict(question=question, output="@is_normal[False]", produced_files=[])
    assert verdict is not None and verdict.answers_question
