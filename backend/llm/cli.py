"""`python -m backend ask "..."`: send one prompt through the provider chain and stream the reply."""

from __future__ import annotations

import argparse
import sys

PROVIDER_CHOICES = ("auto", "llamacpp", "ollama", "openai", "fake")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="+", help="the question (words are joined with spaces)")
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default=None, help="default: APP_LLM_PROVIDERS chain")
    parser.add_argument("--system", default=None, help="optional system prompt")
    parser.add_argument("--max-tokens", type=int, default=None, help="default: APP_LLM_MAX_TOKENS")


def main(args: argparse.Namespace) -> int:
    from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

    from backend.core.startup import load_settings
    from backend.llm.errors import LLMError
    from backend.llm.factory import check_chain, get_chat_model

    settings = load_settings()
    if args.max_tokens is not None:
        if args.max_tokens < 1:
            print("error: --max-tokens must be at least 1", file=sys.stderr)
            return 2
        settings = settings.model_copy(update={"llm_max_tokens": args.max_tokens})
    messages: list[BaseMessage] = [HumanMessage(" ".join(args.prompt))]
    if args.system:
        messages.insert(0, SystemMessage(args.system))
    wrote_newline = True
    try:
        if args.provider != "fake":
            check_chain(settings=settings, provider=args.provider)
        model = get_chat_model(settings=settings, provider=args.provider)
        for chunk in model.stream(messages):
            if chunk.text:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
                wrote_newline = chunk.text.endswith("\n")
    except LLMError as exc:
        if not wrote_newline:
            sys.stdout.write("\n")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    if not wrote_newline:
        sys.stdout.write("\n")
    return 0
