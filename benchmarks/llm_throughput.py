"""Embedded-model throughput: our llamacpp provider (and the failover chain) vs raw `llama_cpp.Llama`.

Same loaded model, same prompts, same sampling, interleaved in one run; medians over --runs.
Prompt tokens/s = prompt tokens evaluated / time to first token; generation tokens/s = generated tokens /
(last token - first token). Then time to first token for a repeated long system prompt: cold vs cache hit.

    .venv/bin/python benchmarks/llm_throughput.py [--model qwen2.5-coder-1.5b] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llama_cpp
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from backend.core.settings import PROJECT_ROOT
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.health import HealthRegistry
from backend.llm.llamacpp import ChatLlamaCpp, SharedLlama, shared_llama
from backend.llm.model_files import MODELS, assemble
from backend.llm.tool_calls import to_chat_dicts

QUESTION = "Write a Python function that parses a CSV file of sales and returns total revenue per region."
RULES = " ".join(f"Rule {i}: inspect column {i} dtype and null count before using it." for i in range(45))


def system_prompt() -> str:
    """A fresh nonce first, so no call can reuse another's KV cache unless we intend it."""
    return f"[{uuid.uuid4().hex}] You are a careful data analyst who writes correct pandas code."


def timed(stream: Iterator[str], llama: Any) -> dict[str, float]:
    ctx = llama._ctx.ctx
    before = llama_cpp.llama_perf_context(ctx)
    start = time.perf_counter()
    first = last = None
    for text in stream:
        if text:
            last = time.perf_counter()
            first = first or last
    after = llama_cpp.llama_perf_context(ctx)
    assert first is not None and last is not None, "model produced no text"
    prompt_tokens = after.n_p_eval - before.n_p_eval
    gen_tokens = after.n_eval - before.n_eval
    return {
        "ttft": first - start,
        "prompt_tokens": prompt_tokens,
        "prompt_tps": prompt_tokens / (first - start),
        "gen_tokens": gen_tokens,
        "gen_tps": (gen_tokens - 1) / (last - first) if last > first else float("nan"),
    }


def raw_stream(llama: Any, messages: list[BaseMessage], max_tokens: int) -> Iterator[str]:
    for part in llama.create_chat_completion(
        messages=to_chat_dicts(messages), stream=True, max_tokens=max_tokens, temperature=0.0, top_p=0.95
    ):
        yield part["choices"][0]["delta"].get("content") or ""


def model_stream(model: Any, messages: list[BaseMessage]) -> Iterator[str]:
    for chunk in model.stream(messages):
        yield chunk.text


class InstantLlama:
    """A backend that streams `tokens` pieces at once: isolates the cost of our wrapper per token."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return ({"choices": [{"delta": {"content": "tok "}}]} for _ in range(self.tokens))


def wrapper_overhead_us(tokens: int = 2000, repeats: int = 5) -> dict[str, float]:
    """Median microseconds per streamed token spent in our code (adapter alone, and through the chain)."""
    adapter = ChatLlamaCpp(shared=SharedLlama(InstantLlama(tokens)))
    chain = FailoverChatModel(entries=[ProviderEntry("llamacpp", adapter)], registry=HealthRegistry())
    out = {}
    for name, stream in (
        ("raw", lambda: adapter._shared().llama.create_chat_completion()),
        ("adapter", lambda: adapter.stream("hi")),
        ("chain", lambda: chain.stream("hi")),
    ):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in stream():
                pass
            times.append((time.perf_counter() - start) / tokens * 1e6)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="qwen2.5-coder-0.5b")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--cache-runs", type=int, default=3, help="runs of the repeated-system-prompt check")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    if args.runs < 3 or args.cache_runs < 3:
        parser.error("--runs and --cache-runs must be at least 3 (medians)")

    path = assemble(args.model, models_dir=Path(PROJECT_ROOT / "data" / "models"), progress=False)
    shared = shared_llama(model_path=path, n_ctx=args.n_ctx, n_threads=args.threads)
    llama = shared.llama
    ours = ChatLlamaCpp(shared=shared, max_tokens=args.max_tokens, temperature=0.0, top_p=0.95)
    chain = FailoverChatModel(entries=[ProviderEntry("llamacpp", ours)], registry=HealthRegistry())
    contenders: dict[str, Callable[[list[BaseMessage]], Iterator[str]]] = {
        "raw llama_cpp.Llama": lambda m: raw_stream(llama, m, args.max_tokens),
        "our llamacpp provider": lambda m: model_stream(ours, m),
        "provider via failover chain": lambda m: model_stream(chain, m),
    }
    print(f"model {args.model}, {args.threads} threads, n_ctx {args.n_ctx}, max_tokens {args.max_tokens}, "
          f"{args.runs} runs (medians; cache check {args.cache_runs} runs), load average at start "
          f"{os.getloadavg()[0]:.2f}")
    timed(raw_stream(llama, [HumanMessage("warm up")], 8), llama)

    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(args.runs):
        for name in names[i % 3 :] + names[: i % 3]:  # interleaved, order rotated: background load hits all alike
            messages = [SystemMessage(system_prompt()), HumanMessage(QUESTION)]
            results[name].append(timed(contenders[name](messages), llama))

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    raw = "raw llama_cpp.Llama"
    print(f"{'':30s}{'prompt tok/s':>14s}{'gen tok/s':>11s}{'ttft s':>9s}{'prompt tok':>12s}{'gen tok':>9s}")
    for name in contenders:
        print(f"{name:30s}{med(name, 'prompt_tps'):14.1f}{med(name, 'gen_tps'):11.2f}{med(name, 'ttft'):9.3f}"
              f"{med(name, 'prompt_tokens'):12.0f}{med(name, 'gen_tokens'):9.0f}")
    def paired(name: str, key: str) -> float:
        """Median of per-run ratios: each pair ran seconds apart, so slow load swings cancel out."""
        return statistics.median(o[key] / r[key] for o, r in zip(results[name], results[raw], strict=True))

    for name in list(contenders)[1:]:
        print(f"ratio {name} / raw: prompt {paired(name, 'prompt_tps'):.3f}, generation {paired(name, 'gen_tps'):.3f}"
              f" (median of per-run ratios; ratio of medians {med(name, 'prompt_tps') / med(raw, 'prompt_tps'):.3f}"
              f" / {med(name, 'gen_tps') / med(raw, 'gen_tps'):.3f}; goal >= 0.95)")

    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    short = ChatLlamaCpp(shared=shared, max_tokens=8, temperature=0.0)
    for i in range(args.cache_runs):
        system = SystemMessage(system_prompt() + " " + RULES)
        cold.append(timed(model_stream(short, [system, HumanMessage(f"Question {i}: what is 2 + 2?")]), llama))
        warm.append(timed(model_stream(short, [system, HumanMessage(f"Question {i}: name a colour.")]), llama))
    c_ttft, w_ttft = statistics.median(r["ttft"] for r in cold), statistics.median(r["ttft"] for r in warm)
    print(f"repeated system prompt (~{statistics.median(r['prompt_tokens'] for r in cold):.0f} tokens), "
          f"time to first token: first call {c_ttft:.3f} s "
          f"({statistics.median(r['prompt_tokens'] for r in cold):.0f} prompt tokens evaluated), "
          f"second call {w_ttft:.3f} s ({statistics.median(r['prompt_tokens'] for r in warm):.0f} evaluated), "
          f"speed-up x{c_ttft / w_ttft:.1f}")
    overhead = wrapper_overhead_us()
    token_us = 1e6 / med(raw, "gen_tps")
    print(f"wrapper cost per streamed token (instant fake backend): adapter {overhead['adapter']:.0f} us, "
          f"chain {overhead['chain']:.0f} us, bare iteration {overhead['raw']:.1f} us; at the raw "
          f"{med(raw, 'gen_tps'):.2f} tok/s measured above that bounds the generation ratio at "
          f"{token_us / (token_us + overhead['chain'] - overhead['raw']):.3f} (chain)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
