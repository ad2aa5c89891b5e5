"""`@llm_func` with the embedded model: text categorisation into an allowed label set, with and without retries.

    .venv/bin/python benchmarks/llm_func.py [--model qwen2.5-coder-0.5b] [--limit 24] [--retries 2]

One stub (`Category` with a free `label: str`, a post-hook enforcing the allowed label set) is called twice per text
in the same run: once with `max_retries=0` (no retry loop) and once with `max_retries=N`; a third variant puts
the label set in the type (`Literal`, no hook) with `max_retries=N`. The order rotates per text so llama.cpp's
prompt cache favours none. Prints per-text lines, then per variant: contract success
rate (an allowed label came back), accuracy (it was the expected label), median and p90 seconds per call, mean
attempts. Then the framework's own overhead per call on a scripted model (JSON fast path vs sandbox snippet).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402

from backend.llm.contracts import (  # noqa: E402
    LLMCallContext,
    SandboxSnippetRunner,
    ValidationFailedError,
    llm_func,
    record_llm_calls,
    use_llm,
    use_runner,
)

LABELS = ["sport", "politics", "tech", "cooking", "weather", "medicine"]
"""Deliberately not the words a model reaches for first ("sports", "technology", "food", "health"): the
post-hook has something to reject, so the run shows what the retry loop recovers."""

TEXTS: list[tuple[str, str]] = [
    ("The striker scored twice in the last ten minutes of the final.", "sport"),
    ("The senate passed the budget bill after a long debate.", "politics"),
    ("The new phone ships with a faster chip and more memory.", "tech"),
    ("Simmer the tomatoes with garlic and basil for twenty minutes.", "cooking"),
    ("Heavy rain and strong winds are expected over the weekend.", "weather"),
    ("Regular exercise lowers the risk of heart disease.", "medicine"),
    ("The tennis champion lost in the first round this year.", "sport"),
    ("Voters head to the polls to elect a new president.", "politics"),
    ("The startup released an open-source database engine.", "tech"),
    ("This chocolate cake recipe needs only five ingredients.", "cooking"),
    ("A heatwave will push temperatures above 40 degrees.", "weather"),
    ("Doctors recommend getting the flu vaccine every autumn.", "medicine"),
    ("The marathon runner broke the course record.", "sport"),
    ("The prime minister announced a cabinet reshuffle.", "politics"),
    ("Engineers fixed a security bug in the web browser.", "tech"),
    ("Fresh sushi and miso soup were served for lunch.", "cooking"),
    ("Snow is forecast for the mountains tonight.", "weather"),
    ("Drinking enough water helps prevent headaches.", "medicine"),
    ("The basketball team won the championship game.", "sport"),
    ("Parliament rejected the new immigration law.", "politics"),
    ("The laptop's battery now lasts twenty hours.", "tech"),
    ("Bake the bread at 220 degrees until golden.", "cooking"),
    ("Thunderstorms may cause flooding in the valley.", "weather"),
    ("A balanced diet and sleep improve the immune system.", "medicine"),
]


class Category(BaseModel):
    label: str


def label_allowed(output: Category) -> None:
    assert output.label in LABELS, f"label must be exactly one of {LABELS}"


def categorize_stub(text: str) -> Category:
    """Categorise the text into exactly one label from {LABELS}.

    Text: {text}"""
    raise NotImplementedError


class StrictCategory(BaseModel):
    label: Literal["sport", "politics", "tech", "cooking", "weather", "medicine"]


def variant(retries: int) -> Any:
    return llm_func(output_model=Category, post_hooks=[label_allowed], max_retries=retries)(categorize_stub)


def literal_variant(retries: int) -> Any:
    """The allowed set in the type instead of a hook: the schema and answer template list the labels."""
    return llm_func(output_model=StrictCategory, max_retries=retries)(categorize_stub)


def call(func: Any, text: str) -> tuple[str | None, float, LLMCallContext]:
    started = time.perf_counter()
    with record_llm_calls() as calls:
        try:
            label: str | None = func(text).label
        except ValidationFailedError:
            label = None
    return label, time.perf_counter() - started, calls[0]


def summarize(name: str, rows: list[tuple[str | None, float, LLMCallContext, str]]) -> None:
    seconds = sorted(r[1] for r in rows)
    ok = sum(r[0] is not None for r in rows)
    right = sum(r[0] == r[3] for r in rows)
    attempts = statistics.mean(r[2].current_attempt_number for r in rows)
    p90 = seconds[min(len(seconds) - 1, round(0.9 * (len(seconds) - 1)))]
    print(
        f"{name:<16} success {ok}/{len(rows)} = {ok / len(rows):.0%}   accuracy {right}/{len(rows)} = "
        f"{right / len(rows):.0%}   median {statistics.median(seconds):.2f} s   p90 {p90:.2f} s   "
        f"mean attempts {attempts:.2f}"
    )


def model_run(args: argparse.Namespace) -> None:
    from backend.core.settings import PROJECT_ROOT, Settings
    from backend.llm.factory import get_chat_model

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=PROJECT_ROOT / "data",
        llm_providers=["llamacpp"],
        embedded_model=args.model,
        llm_context_tokens=4096,
    )
    model = get_chat_model(settings=settings, provider="llamacpp")
    plain, retrying, typed = variant(0), variant(args.retries), literal_variant(args.retries)
    names = ("no retry loop", "retry loop", "Literal + retry")
    rows: dict[str, list[tuple[str | None, float, LLMCallContext, str]]] = {name: [] for name in names}
    with use_llm(model):
        model.invoke("Say OK.")  # load the model outside the timings
        for i, (text, expected) in enumerate(TEXTS[: args.limit]):
            order = list(zip(names, (plain, retrying, typed), strict=True))
            for name, func in order[i % 3 :] + order[: i % 3]:  # rotate: the prompt cache favours no variant
                label, seconds, context = call(func, text)
                rows[name].append((label, seconds, context, expected))
                paths = ",".join(a.path or "-" for a in context.get_attempts_history())
                print(f"{i:2d} {name:<15} {seconds:6.2f} s  attempts {context.current_attempt_number}  "
                      f"[{paths}]  {label!s:<11} expected {expected}")
    print(f"\nmodel {args.model}, {len(rows['retry loop'])} texts, retry loop = max_retries {args.retries}")
    for name, result in rows.items():
        summarize(name, result)


def overhead_run(repeats: int) -> None:
    """Framework cost per call on a scripted model: JSON fast path, and a snippet in a real sandbox."""
    from backend.core.settings import Settings
    from backend.llm.fake import ScriptedChatModel

    func = variant(0)
    with use_llm(ScriptedChatModel(replies=['{"label": "cooking"}'], cycle=True)):
        func("warm-up")
        started = time.perf_counter()
        for _ in range(repeats):
            func("pasta")
        fast = (time.perf_counter() - started) / repeats
    baseline_model = ScriptedChatModel(replies=['{"label": "cooking"}'], cycle=True)
    started = time.perf_counter()
    for _ in range(repeats):
        Category.model_validate_json(str(baseline_model.invoke("pasta").content))
    baseline = (time.perf_counter() - started) / repeats

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), llm_providers=["fake"])  # type: ignore[call-arg]
        runner = SandboxSnippetRunner(settings=settings)
        code = "```python\nllm_output = {'label': sorted(['cooking', 'weather'])[0]}\n```"
        snippet_times = []
        with use_llm(ScriptedChatModel(replies=[code], cycle=True)), use_runner(runner):
            func("warm-up")
            for _ in range(max(3, repeats // 50)):
                started = time.perf_counter()
                func("pasta")
                snippet_times.append(time.perf_counter() - started)
        runner.close()
    print(f"\noverhead on a scripted model ({repeats} calls): plain invoke + model_validate_json "
          f"{baseline * 1000:.2f} ms; @llm_func JSON fast path {fast * 1000:.2f} ms "
          f"({fast / baseline:.1f}x); sandbox snippet median {statistics.median(snippet_times) * 1000:.0f} ms "
          f"over {len(snippet_times)} calls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", choices=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--limit", type=int, default=len(TEXTS))
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--overhead-only", action="store_true", help="skip the model run")
    args = parser.parse_args()
    if not args.overhead_only:
        model_run(args)
    overhead_run(200)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
