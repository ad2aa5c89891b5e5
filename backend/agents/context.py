"""Per-turn context within a token budget: recent turns verbatim, older ones summarised, notepad, variables, files.

The prompt order every graph uses is: fixed system text, then history, then this turn's context and question,
so consecutive LLM calls of a turn share the longest possible prefix (llama.cpp reuses its KV cache for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage

from backend.agents.runtime import CHARS_PER_TOKEN
from backend.agents.state import Brief
from backend.core.settings import Settings

SHARE_VARIABLES = 0.30
"""Part of the context budget the variable catalog may take (code generation depends on it most)."""
SHARE_NOTEPAD = 0.20
SHARE_FILES = 0.15
SHARE_SUMMARY = 0.10
SUMMARY_QUESTION_CHARS = 100
SUMMARY_ANSWER_CHARS = 160
NOTEPAD_ENTRY_CHARS = 400
"""Longest answer excerpt written to the notepad after a turn."""
VARS_DIR = "vars"
"""Sub-folder of a session holding the variable store (as `SandboxManager.variables` lays it out)."""

Turn = tuple[HumanMessage, AIMessage | None]


def session_dir(settings: Settings, conversation_id: str) -> Path:
    return settings.sessions_dir / conversation_id


def split_turns(messages: Sequence[AnyMessage]) -> list[Turn]:
    """Pair each question with the answer that followed it (None while a turn is unanswered)."""
    turns: list[Turn] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            turns.append((message, None))
        elif isinstance(message, AIMessage) and turns and turns[-1][1] is None:
            turns[-1] = (turns[-1][0], message)
    return turns


def assemble_brief(
    *, messages: Sequence[AnyMessage], settings: Settings, conversation_id: str, files: Mapping[str, Path]
) -> Brief:
    """Everything the turn's prompts need besides the question, cut to `settings.agent_context_tokens`."""
    budget = settings.agent_context_tokens * CHARS_PER_TOKEN
    root = session_dir(settings, conversation_id)
    variables = _clip(_render_variables(root, int(budget * SHARE_VARIABLES)), int(budget * SHARE_VARIABLES))
    notepad = _clip(_render_notepad(root, int(budget * SHARE_NOTEPAD)), int(budget * SHARE_NOTEPAD))
    file_text = _clip(describe_files(files), int(budget * SHARE_FILES))
    past = split_turns(messages)[:-1]  # the last turn is the question being answered now
    left = budget - len(variables) - len(notepad) - len(file_text) - int(budget * SHARE_SUMMARY)
    recent: list[Turn] = []
    for turn in reversed(past[-settings.agent_history_turns :] if settings.agent_history_turns else []):
        size = sum(len(str(m.content)) for m in turn if m is not None)
        if size > left:
            break
        recent.insert(0, turn)
        left -= size
    older = past[: len(past) - len(recent)]
    history: list[AnyMessage] = [m for turn in recent for m in turn if m is not None]
    return Brief(
        history=history,
        history_text=_history_text(recent),
        summary=_summarise(older, int(budget * SHARE_SUMMARY)),
        notepad=notepad,
        variables=variables,
        files=file_text,
        variable_names=variable_names(settings, conversation_id),
    )


def context_block(brief: Brief, *, plan: str = "") -> str:
    """The turn's context as one text block, placed right before the question (notepad and variables carry
    their own headings)."""
    sections = (
        _titled("Earlier in this conversation (summary)", brief.get("summary", "")),
        brief.get("notepad", ""),
        brief.get("variables", ""),
        _titled("Files attached", brief.get("files", "")),
        _titled("Plan", plan),
    )
    return "\n\n".join(section.strip() for section in sections if section and section.strip())


def _titled(title: str, body: str) -> str:
    return f"{title}:\n{body.strip()}" if body and body.strip() else ""


def prompt_messages(system: str, brief: Brief, question: str, *, plan: str = "") -> list[BaseMessage]:
    """System text, recent turns, then context and question in one human message (the stable-prefix order)."""
    from langchain_core.messages import SystemMessage

    block = context_block(brief, plan=plan)
    ask = f"{block}\n\nQuestion: {question}" if block else question
    return [SystemMessage(content=system), *brief.get("history", []), HumanMessage(content=ask)]


def describe_files(files: Mapping[str, Path]) -> str:
    """One short paragraph per attached file (kind, size, columns) so the router and planner know the data."""
    if not files:
        return ""
    try:
        from backend.storage.inspect import describe_file
    except ImportError:  # pragma: no cover - storage is part of the tree
        return "\n".join(f"- {name}" for name in files)
    parts = []
    for name, path in files.items():
        try:
            parts.append(describe_file(path, max_rows=2, name=name).as_prompt(max_chars=800))
        except Exception as exc:  # a broken upload must not break the turn
            parts.append(f"- {name} (could not be inspected: {type(exc).__name__})")
    return "\n\n".join(parts)


def record_turn(
    *, settings: Settings, conversation_id: str, question: str, answer: str, known_variables: Sequence[str] = ()
) -> None:
    """Write the turn's finding (and the variables it created) to the session notepad for later turns and the coder."""
    from backend.storage.notepad import NOTEPAD_FILE, Notepad

    if not question.strip() and not answer.strip():
        return
    created = [name for name in variable_names(settings, conversation_id) if name not in set(known_variables)]
    Notepad(path=session_dir(settings, conversation_id) / NOTEPAD_FILE).add(
        question=question, finding=_clip(answer, NOTEPAD_ENTRY_CHARS), variables=created
    )


def variable_names(settings: Settings, conversation_id: str) -> list[str]:
    """Names in the session's variable catalog (what earlier code runs saved)."""
    from backend.storage.variables import VariableStore

    return [meta.name for meta in VariableStore(root=session_dir(settings, conversation_id) / VARS_DIR).catalog()]


def _render_variables(root: Path, max_chars: int) -> str:
    from backend.storage.variables import VariableStore

    return VariableStore(root=root / VARS_DIR).render(max_chars)


def _render_notepad(root: Path, max_chars: int) -> str:
    from backend.storage.notepad import NOTEPAD_FILE, Notepad

    return Notepad(path=root / NOTEPAD_FILE).render(max_chars)


def _history_text(turns: Sequence[Turn]) -> str:
    """A record, not a dialogue: written as `User:`/`Assistant:` lines, small models answer the next question
    the way the last one was answered (often a bare result, no code) instead of computing it."""
    lines = []
    for question, answer in turns:
        lines.append(f"- Asked: {question.content}")
        if answer is not None:
            lines.append(f"  Answered: {answer.content}")
    return "\n".join(lines)


def _summarise(turns: Sequence[Turn], max_chars: int) -> str:
    """Older turns as one line each (question → start of the answer), newest kept when space runs out."""
    lines: list[str] = []
    used = 0
    for question, answer in reversed(turns):
        reply = _clip(" ".join(str(answer.content).split()), SUMMARY_ANSWER_CHARS) if answer else "(no answer)"
        line = f"- Q: {_clip(' '.join(str(question.content).split()), SUMMARY_QUESTION_CHARS)} → A: {reply}"
        if used + len(line) > max_chars:
            break
        lines.insert(0, line)
        used += len(line) + 1
    return "\n".join(lines)


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max(0, max_chars - 1)] + "…"
