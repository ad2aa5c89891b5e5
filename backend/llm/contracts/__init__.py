"""Contract-driven LLM functions: `@llm_func` turns a typed stub into a validated, self-correcting LLM call.

```python
class Label(BaseModel):
    label: Literal["bug", "feature", "question"]

@llm_func(post_hooks=[lambda out, text: out.label != "question" or "?" in text])
def classify(text: str) -> Label:
    \"\"\"Classify the issue text {text!r} into one label.\"\"\"

with use_llm(chat_model):        # optional: default is backend.llm.factory.get_chat_model(...)
    classify("Crash when saving a file")   # -> Label(label='bug')
```
"""

from backend.llm.contracts.chat import resolve_llm, use_llm
from backend.llm.contracts.context import (
    AttemptRecord,
    LLMCallContext,
    MaxRetriesExceededError,
    ValidationFailedError,
    record_llm_calls,
)
from backend.llm.contracts.decorator import Contract, contract_of, llm_func
from backend.llm.contracts.runner import (
    SandboxSnippetRunner,
    ScriptedSnippetRunner,
    SnippetOutcome,
    SnippetRunner,
    set_default_runner,
    use_runner,
)

__all__ = [
    "AttemptRecord",
    "Contract",
    "LLMCallContext",
    "MaxRetriesExceededError",
    "SandboxSnippetRunner",
    "ScriptedSnippetRunner",
    "SnippetOutcome",
    "SnippetRunner",
    "ValidationFailedError",
    "contract_of",
    "llm_func",
    "record_llm_calls",
    "resolve_llm",
    "set_default_runner",
    "use_llm",
    "use_runner",
]
