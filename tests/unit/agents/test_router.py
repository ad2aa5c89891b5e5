"""Router: cheap rules for clear cases, the LLM for unclear ones, a safe fallback, and per-request overrides."""

from __future__ import annotations

import pytest

from backend.agents.errors import UnknownStrategyError
from backend.agents.router import check_strategy, route_by_rules
from backend.agents.service import AgentService
from backend.llm.fake import ScriptedChatModel


@pytest.mark.parametrize(
    ("message", "has_files", "expected"),
    [
        ("hi", False, "direct"),
        ("Thanks a lot!", True, "direct"),
        ("good morning", False, "direct"),
        ("ok cool", False, "direct"),
        ("Calculate the mean fare per class", True, "react"),
        ("Which country has the highest happiness score?", True, "react"),
        ("Rank the regions by revenue", True, "react"),
        ("what is the correlation between age and fare?", True, "react"),
        ("(3 + 4) * 12 =", False, "react"),
        ("Plot a histogram of the ages", False, "react"),
        ("1. load sales.csv\n2. compute monthly totals\n3. plot them", False, "plan_execute"),
        ("First clean the data, then fit a regression and finally report R2", False, "plan_execute"),
        ("First search the web for the 2024 GDP figures, then compute the mean of gdp.csv", True, "plan_execute"),
        ("1. summarise the attached PDF\n2. compute the average of the table in it", True, "plan_execute"),
        ("Nice weather today", False, "direct"),
    ],
)
def test_rules_pick_the_obvious_strategy(message, has_files, expected):
    decision = route_by_rules(message, has_files=has_files)
    assert decision is not None and decision.strategy == expected


@pytest.mark.parametrize(
    "message",
    [
        "1. load sales.csv\n2. compute monthly totals\n3. plot them",
        "First clean the data, then fit a regression and finally report R2",
        "Test normality of score.\n1. Use the Shapiro-Wilk test.\n2. If p < 0.05 take the log and report the mean.",
        '2. Correlate the sentiment with the length of articles published by the source "ABC News".',
    ],
)
def test_multi_part_computations_on_attached_files_go_to_the_coder_in_one_piece(message):
    """Several computing steps over the files are one program; planning them first cost the small model minutes."""
    decision = route_by_rules(message, has_files=True)
    assert decision is not None
    assert (decision.strategy, decision.first_tool, decision.tools) == ("react", "python_coder", ("python_coder",))


@pytest.mark.parametrize(
    ("message", "has_files", "has_variables", "tools"),
    [
        ("Calculate the mean fare", True, False, ("python_coder",)),
        ("Compute total_units divided by 4", False, True, ("python_coder",)),
        ("12 * (3 + 4)", False, False, ("calculator",)),
        ("Compute the mean of 3, 4 and 8", False, False, ()),
    ],
)
def test_rules_narrow_the_tools_for_data_and_arithmetic(message, has_files, has_variables, tools):
    decision = route_by_rules(message, has_files=has_files, has_variables=has_variables)
    assert decision is not None and decision.tools == tools


@pytest.mark.parametrize(
    "message", ["Who wrote the Iliad and why is it still read today?", "Tell me what you know about this report please"]
)
def test_rules_abstain_when_unsure(message):
    assert route_by_rules(message, has_files=False) is None


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, "auto"), ("", "auto"), ("ReAct", "react"), ("plan-execute", "plan_execute"), (" direct ", "direct")],
)
def test_known_strategies_are_normalised(requested, expected):
    assert check_strategy(requested) == expected


def test_unknown_strategy_is_a_typed_error():
    with pytest.raises(UnknownStrategyError, match="unknown strategy 'magic'"):
        check_strategy("magic")


def service(settings, tools, *replies) -> tuple[AgentService, ScriptedChatModel]:
    llm = ScriptedChatModel(replies=list(replies))
    return AgentService(settings=settings, llm=llm, tools=tools), llm


async def test_unclear_message_is_routed_by_the_llm(settings, tools, collect, of_type):
    svc, _ = service(settings, tools, '{"strategy": "direct", "reason": "general knowledge"}', "Homer.")
    events = await collect(svc.run(run_id="r", conversation_id="c", user_id="u",
                                   message="Who wrote the Iliad and why is it still read today?"))
    [final] = of_type(events, "final_answer")
    assert (final.strategy, final.text) == ("direct", "Homer.")
    route = [e for e in of_type(events, "step_finished") if e.node == "route"]
    assert '"strategy":"direct"' in route[0].output


async def test_router_falls_back_to_react_when_the_llm_cannot_decide(settings, tools, collect, of_type):
    svc, _ = service(settings, tools, "no idea", "still no idea", "I believe it was Homer.")
    events = await collect(svc.run(run_id="r", conversation_id="c", user_id="u",
                                   message="Who wrote the Iliad and why is it still read today?"))
    [final] = of_type(events, "final_answer")
    assert final.strategy == "react"
    assert final.text == "I believe it was Homer."


async def test_requested_strategy_overrides_the_rules(settings, tools, collect, of_type):
    svc, _ = service(settings, tools, '{"steps": [{"goal": "say hello", "tool": "react"}]}', "hello", "Hello!")
    events = await collect(svc.run(run_id="r", conversation_id="c", user_id="u", message="hi", strategy="plan_execute"))
    assert of_type(events, "run_started")[0].strategy == "plan_execute"
    assert of_type(events, "final_answer")[0].strategy == "plan_execute"
    assert len(of_type(events, "plan")) == 1


async def test_arithmetic_turn_offers_only_the_calculator(settings, tools, call, collect):
    svc, llm = service(settings, tools, call("explode", text="x"), "84")
    await collect(svc.run(run_id="r", conversation_id="c", user_id="u", message="12 * (3 + 4)"))
    assert llm.calls[1][-1].content == "Error: unknown tool 'explode'; available tools: calculator"


async def test_data_question_with_files_calls_the_coder_first_without_asking_the_model(settings, collect, tmp_path):
    from langchain_core.tools import StructuredTool

    from backend.tools.registry import TASK_TOOL_METADATA, ToolRegistry

    asked: list[str] = []

    async def python_coder(question: str) -> str:
        """Compute with code.

        Args:
            question: The task.
        """
        asked.append(question)
        return "mean = 2.5"

    coder = StructuredTool.from_function(coroutine=python_coder, parse_docstring=True,
                                         metadata={TASK_TOOL_METADATA: True})
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n4\n")
    svc, llm = service(settings, ToolRegistry([coder]))
    events = await collect(svc.run(run_id="r", conversation_id="c", user_id="u", message="Calculate the mean of x",
                                   files=[data]))
    assert asked == ["Calculate the mean of x"]
    assert llm.calls == []
    assert events[-1].text == "mean = 2.5"
