"""A scripted stand-in for the LLM, for the browser tests and the notebook tour on the fake provider.

It reads each prompt the way a model would (which graph is asking, the question, the attached files and their
exact columns, the variables saved earlier) and replies with a tool call, a Python program or an answer built
from the tool's real output. The numbers users see are always computed by the sandbox, never written here.

Run as a script it starts the backend (run_backend.py, same APP_* settings) with this model as `fake`:
    APP_LLM_PROVIDERS=fake python tests/e2e/demo_model.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

ROOT = Path(__file__).resolve().parents[2]

LONG_RUN_WORDS = ("slow", "long-running", "long running", "simulation", "simulate")
"""Questions with these words get a program that runs for a minute (the stop-button flow)."""
LONG_RUN_SECONDS = 60
DOCUMENT_WORDS = ("pdf", "document", "report", "policy", "memo", "according to")
PLOT_WORDS = ("plot", "chart", "histogram", "graph", "visuali")
EXPORT_WORDS = ("export", "save", "download")
HIGHEST_WORDS = ("highest", "largest", "biggest", "best", "top", "most")
LOWEST_WORDS = ("lowest", "smallest", "worst", "least")
GROUP_VARIABLE = re.compile(r"\b(avg_\w+?_by_\w+)\b")

FILE_HEAD = re.compile(r"File `([^`]+)` \(([^,)]+)")
COLUMN_LINE = re.compile(r"^- '([^']+)' (\S+)", re.MULTILINE)
NUMERIC_DTYPES = ("int", "float", "double", "number")


def text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict))


def question_of(messages: list[BaseMessage]) -> str:
    """The question being asked now: the latest human turn with a `Question:` marker (text after it), else the
    latest human turn (earlier turns of the conversation come first in the prompt)."""
    humans = [text(m) for m in messages if isinstance(m, HumanMessage)]
    body = next((h for h in reversed(humans) if "Question:" in h), humans[-1] if humans else "")
    marker = body.rfind("Question:")
    return (body[marker + len("Question:") :] if marker >= 0 else body).strip()


# --- tables in the prompt --------------------------------------------------------------------
def tables_in(prompt: str) -> list[dict[str, Any]]:
    """Files the prompt describes, each with its exact columns and dtypes (from FileDescription.as_prompt)."""
    tables = []
    starts = [m for m in FILE_HEAD.finditer(prompt)]
    for i, match in enumerate(starts):
        block = prompt[match.end() : starts[i + 1].start() if i + 1 < len(starts) else len(prompt)]
        columns = COLUMN_LINE.findall(block)
        if columns:
            tables.append({"name": match.group(1), "format": match.group(2).strip().lower(), "columns": columns})
    return tables


def loader(table: dict[str, Any]) -> str:
    name, fmt = json.dumps(table["name"]), table["format"]
    if "excel" in fmt or table["name"].endswith(".xlsx"):
        return f"pd.read_excel({name})"
    if "parquet" in fmt:
        return f"pd.read_parquet({name})"
    if "tsv" in fmt:
        return f"pd.read_csv({name}, sep='\\t')"
    if "json" in fmt:
        return f"pd.read_json({name}, lines={'jsonl' in fmt})"
    return f"pd.read_csv({name})"


def mentioned(columns: list[tuple[str, str]], question: str) -> list[str]:
    words = question.lower()
    return [name for name, _ in columns if re.search(rf"\b{re.escape(name.lower())}\b", words)]


def code_for(question: str, prompt: str) -> str:
    """The program a good model would write for this demo question."""
    q = question.lower()
    if any(word in q for word in LONG_RUN_WORDS):
        return (
            "import time\n\n"
            f"# a deliberately slow job: {LONG_RUN_SECONDS} s of simulated work\n"
            f"for second in range({LONG_RUN_SECONDS}):\n"
            "    time.sleep(1)\n"
            'print("simulation finished")'
        )
    tables = tables_in(prompt)
    saved = GROUP_VARIABLE.findall(prompt)
    if saved and any(w in q for w in (*HIGHEST_WORDS, *LOWEST_WORDS)):
        var = saved[-1]
        pick = "idxmin" if any(w in q for w in LOWEST_WORDS) else "idxmax"
        value = "min" if pick == "idxmin" else "max"
        label = "Lowest" if pick == "idxmin" else "Highest"
        return (
            f"# reuses `{var}`, computed in an earlier turn of this conversation\n"
            f'print(f"{label}: {{{var}.{pick}()}} ({{{var}.{value}():.2f}})")'
        )
    if not tables:
        return 'print("No table is attached to this conversation; upload a CSV, Excel, JSON or Parquet file.")'
    table = tables[0]
    numeric = [name for name, dtype in table["columns"] if dtype.startswith(NUMERIC_DTYPES)]
    other = [name for name, dtype in table["columns"] if not dtype.startswith(NUMERIC_DTYPES)]
    named = mentioned(table["columns"], question)
    num = next((c for c in named if c in numeric), numeric[0] if numeric else None)
    cat = next((c for c in named if c in other), None)
    head = f"import pandas as pd\n\ndf = {loader(table)}\n"
    if num is None:
        return head + "print(df.describe(include='all').to_string())"
    if any(word in q for word in PLOT_WORDS):
        figure = f"{num}_by_{cat}.png" if cat else f"{num}_histogram.png"
        body = (
            f"ax = df.groupby({cat!r})[{num!r}].mean().plot(kind='bar', title='Average {num} by {cat}')\n"
            if cat
            else f"ax = df[{num!r}].plot(kind='hist', bins=20, title='Distribution of {num}')\n"
        )
        return (
            "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n" + head + body
            + f"ax.set_ylabel({'Average ' + num if cat else 'count'!r})\nplt.tight_layout()\nplt.savefig({figure!r})\n"
            + f"print('Saved the chart to {figure}')"
        )
    if any(word in q for word in EXPORT_WORDS) and cat:
        out = f"avg_{_ident(num)}_by_{_ident(cat)}.csv"
        return (
            head + f"summary = df.groupby({cat!r})[{num!r}].agg(['mean', 'min', 'max']).round(2)\n"
            f"summary.to_csv({out!r})\nprint(f'Wrote {{len(summary)}} rows to {out}')"
        )
    if any(word in q for word in ("how many", "count", "number of rows")):
        return head + 'print(f"Rows: {len(df)}")'
    if cat:
        var = f"avg_{_ident(num)}_by_{_ident(cat)}"
        return (
            head + f"{var} = df.groupby({cat!r})[{num!r}].mean().round(2)\n"
            f"print('Average {num} by {cat}:')\nprint({var}.to_string())"
        )
    var = f"mean_{_ident(num)}"
    return head + f"{var} = round(df[{num!r}].mean(), 2)\nprint(f'Average {num}: {{{var}}}')"


def _ident(name: str) -> str:
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "value"


# --- replies per graph ---------------------------------------------------------------------------
def contract_reply(system: str, prompt: str) -> str:
    """Replies to `@llm_func` contracts (router, planner, replanner) as the `llm_output = ...` snippet they ask for."""
    name = re.search(r"Function: def (\w+)\(", system)
    function = name.group(1) if name else ""
    if function == "choose_strategy":
        value: Any = {"strategy": "react", "reason": "needs a tool"}
    elif function == "make_plan":
        task = re.search(r"Plan how to answer the request '(.*?)' in at most", prompt, re.DOTALL)
        goal = task.group(1) if task else "answer the request"
        value = {"steps": [{"goal": goal[:480], "tool": "python_coder", "success": "prints the answer"}]}
    elif function == "decide_replan":
        value = {"action": "finish", "reason": "answer with what is known"}
    else:
        value = None
    return f"```python\nllm_output = {json.dumps(value)}\n```"


def react_reply(messages: list[BaseMessage]) -> AIMessage:
    """ReAct: call the right tool for the question, then answer from what the tool returned."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        if last.status == "error":
            failure = text(last).strip()
            return AIMessage(content=f"The {last.name or 'tool'} step failed, so I cannot answer yet:\n\n> {failure}")
        return AIMessage(content=answer_from(last.name or "tool", text(last)))
    question = question_of(messages)
    q = question.lower()
    if any(word in q for word in DOCUMENT_WORDS):
        return _call("rag_search", {"query": question})
    return _call("python_coder", {"question": question})


def answer_from(tool: str, observation: str) -> str:
    if tool == "rag_search":
        passages = re.findall(r"\n\[\d+\] (\[[^\]]+\]|\S+)[^\n]*\n([^\n]+)", observation)
        if not passages:
            return f"The documents do not say: {observation.strip()}"
        citation, passage = passages[0]
        return f"According to the document {citation}:\n\n> {passage.strip()}"
    output, _, made = observation.partition("\nFiles created:")
    reply = f"Computed by running Python on your data:\n\n```text\n{output.strip()}\n```"
    if made.strip():
        reply += f"\n\nFiles created: {made.strip()} (below)."
    return reply


def _call(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{name}", "type": "tool_call"}])


def demo_reply(messages: list[BaseMessage]) -> AIMessage:
    system = text(messages[0]) if messages and isinstance(messages[0], SystemMessage) else ""
    prompt = "\n".join(text(m) for m in messages)
    last = text(messages[-1]) if messages else ""
    if "You are the body of a Python function" in system:
        return AIMessage(content=contract_reply(system, prompt))
    if system.startswith("You are a data analyst who answers questions by writing Python"):
        if "Does this output answer the question" in last:
            return AIMessage(content='{"answers_question": true, "reason": "the output answers it"}')
        return AIMessage(content=f"```python\n{code_for(question_of(messages), prompt)}\n```")
    if system.startswith("You are a careful data analysis assistant"):
        return react_reply(messages)
    if system.startswith("You write the final answer for the user from the results"):
        results = last.split("Results of the steps:", 1)[-1].replace("Write the answer.", "").strip()
        return AIMessage(content=f"Here is what the plan found:\n\n```text\n{results}\n```")
    if system.startswith("You are a helpful data analysis assistant"):
        return AIMessage(content="Hello! Upload a table or a document and ask me about it: "
                                 "I answer by writing Python and running it on your data.")
    return AIMessage(content=f"(demo model) You asked: {question_of(messages)}")


def install() -> None:
    """Make the `fake` provider of this process play the demo (instead of echoing)."""
    from backend.llm import factory
    from backend.llm.fake import ScriptedChatModel

    factory.fake_model = lambda: ScriptedChatModel(replies=[demo_reply], cycle=True)  # type: ignore[assignment]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    install()
    import run_backend

    run_backend.main()


if __name__ == "__main__":
    main()
