"""Python coder tool: answers a question about the user's files by generating, running, fixing and verifying code."""

from backend.tools.python_coder.loop import SandboxRunner, run_coder
from backend.tools.python_coder.models import CoderAttempt, CoderContext, CoderResult, Verdict

__all__ = ["CoderAttempt", "CoderContext", "CoderResult", "SandboxRunner", "Verdict", "run_coder"]
