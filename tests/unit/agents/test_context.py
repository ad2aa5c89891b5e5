"""Turn context: notepad, variable catalog, files and history assembled in the stable-prefix order, within budget."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from backend.agents.context import assemble_brief, prompt_messages, record_turn, split_turns
from backend.storage.notepad import Notepad
from backend.storage.variables import VariableStore


def conversation(turns: int, *, size: int = 10) -> list:
    messages: list = []
    for i in range(turns):
        messages += [HumanMessage(content=f"question {i} " + "q" * size),
                     AIMessage(content=f"answer {i} " + "a" * size)]
    return [*messages, HumanMessage(content="current question")]


def save_variable(settings, conversation_id: str, name: str) -> None:
    store = VariableStore(root=settings.sessions_dir / conversation_id / "vars")
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / f"{name}.json").write_text("[1, 2]")
    store.update(saved=[{"name": name, "kind": "json", "file": f"{name}.json", "type": "list"}])


def test_turns_pair_questions_with_answers():
    turns = split_turns(conversation(2))
    assert [(q.content[:10], a.content[:8] if a else None) for q, a in turns] == [
        ("question 0", "answer 0"), ("question 1", "answer 1"), ("current qu", None)
    ]


def test_recent_turns_are_verbatim_and_older_ones_summarised(settings):
    settings.agent_history_turns = 2
    brief = assemble_brief(messages=conversation(5), settings=settings, conversation_id="c", files={})
    assert [m.content.split()[1] for m in brief["history"]] == ["3", "3", "4", "4"]
    assert brief["summary"].count("- Q: question") == 3
    assert "current question" not in brief["history_text"]


def test_history_that_does_not_fit_the_budget_moves_to_the_summary(settings):
    settings.agent_context_tokens = 1000
    brief = assemble_brief(messages=conversation(4, size=1200), settings=settings, conversation_id="c", files={})
    assert len(brief["history"]) == 2
    assert brief["summary"].startswith("- Q: question")


def test_notepad_and_variables_enter_the_brief(settings):
    save_variable(settings, "c", "monthly_totals")
    Notepad(path=settings.sessions_dir / "c" / "notepad.jsonl").add(question="q1", finding="total is 12")
    brief = assemble_brief(messages=conversation(0), settings=settings, conversation_id="c", files={})
    assert "monthly_totals" in brief["variables"]
    assert "total is 12" in brief["notepad"]
    assert brief["variable_names"] == ["monthly_totals"]


def test_attached_files_are_described_with_their_columns(settings, tmp_path):
    data = tmp_path / "sales.csv"
    data.write_text("Region,Revenue\nNorth,10\nSouth,20\n")
    brief = assemble_brief(messages=conversation(0), settings=settings, conversation_id="c", files={"sales.csv": data})
    assert "sales.csv" in brief["files"] and "Revenue" in brief["files"]


def test_prompt_order_is_system_history_then_context_and_question(settings):
    save_variable(settings, "c", "df")
    brief = assemble_brief(messages=conversation(1), settings=settings, conversation_id="c", files={})
    messages = prompt_messages("SYSTEM", brief, "current question")
    assert isinstance(messages[0], SystemMessage) and messages[0].content == "SYSTEM"
    assert [m.type for m in messages[1:]] == ["human", "ai", "human"]
    assert messages[-1].content.index("df") < messages[-1].content.index("Question: current question")


def test_a_turn_records_its_finding_and_new_variables(settings):
    save_variable(settings, "c", "old_var")
    known = ["old_var"]
    save_variable(settings, "c", "new_var")
    record_turn(settings=settings, conversation_id="c", question="compute", answer="it is 5", known_variables=known)
    [entry] = Notepad(path=settings.sessions_dir / "c" / "notepad.jsonl").entries()
    assert (entry.question, entry.finding, entry.variables) == ("compute", "it is 5", ["new_var"])

