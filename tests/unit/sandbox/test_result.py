"""Output clipping keeps the start and end with a visible marker; observation() shows what the LLM needs."""

from __future__ import annotations

from backend.sandbox.result import TRUNCATION_MARKER, SandboxResult, clip_output, clip_text


def test_short_output_is_kept_whole() -> None:
    assert clip_output(head="abc", tail="def", total=6) == ("abcdef", False)


def test_clipped_output_carries_a_marker_with_the_omitted_count() -> None:
    text, cut = clip_output(head="a" * 10, tail="z" * 5, total=1000)
    assert cut
    assert text.startswith("a" * 10) and text.endswith("z" * 5)
    assert TRUNCATION_MARKER.format(omitted=985) in text


def test_clip_text_keeps_head_and_tail_within_the_limit() -> None:
    text, cut = clip_text("".join(str(i % 10) for i in range(10_000)), limit=1000)
    assert cut
    assert text.startswith("0123456789")
    assert text.endswith("56789")
    assert len(text) < 1100


def test_observation_of_a_failure_names_the_error_and_line() -> None:
    result = SandboxResult(ok=False, stdout="partial\n", error_type="KeyError", error_message="'fare'", error_line=3)
    assert result.observation() == "partial\n\nKeyError: 'fare' (line 3)"


def test_observation_of_silent_success_says_so() -> None:
    assert SandboxResult(ok=True).observation() == "(no output)"
