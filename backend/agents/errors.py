"""Typed errors an agent turn refuses or ends with; the API maps them to 4xx responses or error events."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error raised on purpose by `backend.agents`."""

    kind = "agent_error"


class InvalidRequestError(AgentError, ValueError):
    """The request itself is unusable (empty or oversized message, unknown strategy, bad file)."""

    kind = "invalid_request"


class EmptyMessageError(InvalidRequestError):
    """The message has no text."""

    kind = "empty_message"


class MessageTooLongError(InvalidRequestError):
    """The message exceeds `settings.max_message_chars`."""

    kind = "message_too_long"


class UnknownStrategyError(InvalidRequestError):
    """The requested strategy is not one of `STRATEGIES`."""

    kind = "unknown_strategy"


class TurnTimeoutError(AgentError):
    """The turn exceeded its wall-clock budget (`settings.agent_turn_seconds`)."""

    kind = "timeout"


class NothingToResumeError(AgentError):
    """`resume` was asked for a conversation whose last turn is not interrupted."""

    kind = "nothing_to_resume"
