"""Code extraction from model replies: fences, unclosed fences, bare code, and the syntax pre-check."""

from __future__ import annotations

from backend.tools.python_coder.extract import extract_code, repetition_start, syntax_error


def test_python_fence_is_extracted_without_prose() -> None:
    reply = "Here is the code:\n```python\nimport pandas as pd\nprint(1)\n```\nThis prints 1."
    assert extract_code(reply) == "import pandas as pd\nprint(1)"


def test_longest_python_block_wins_over_a_short_one() -> None:
    reply = "```python\nx = 1\n```\nthen\n```py\nimport math\nprint(math.pi)\n```"
    assert extract_code(reply) == "import math\nprint(math.pi)"


def test_fence_left_open_by_a_stop_sequence_still_gives_the_code() -> None:
    assert extract_code("```python\nprint(2)") == "print(2)"


def test_untagged_fence_counts_as_python() -> None:
    assert extract_code("```\nprint(3)\n```") == "print(3)"


def test_closing_fence_glued_to_last_line_is_removed() -> None:
    assert extract_code("```python\nprint(4)```") == "print(4)"


def test_bare_code_after_a_prose_line_is_found() -> None:
    assert extract_code("Sure, here you go:\nimport os\nprint(5)") == "import os\nprint(5)"


def test_prose_only_reply_has_no_code() -> None:
    assert extract_code("I cannot answer that without more data.") == ""


def test_shell_block_alone_is_not_python() -> None:
    assert extract_code("```bash\npip install pandas\n```") == ""


def test_pip_and_magic_lines_are_dropped() -> None:
    code = extract_code("```python\n!pip install x\n%matplotlib inline\nprint(6)\n```")
    assert code == "print(6)"


def test_windows_line_endings_are_normalised() -> None:
    assert extract_code("```python\r\nprint(7)\r\n```") == "print(7)"


def test_syntax_error_names_the_line() -> None:
    error = syntax_error("x = 1\nprint(x\n")
    assert error is not None and error.startswith("SyntaxError") and "line" in error


def test_valid_code_has_no_syntax_error() -> None:
    assert syntax_error("print('ok')") is None


def test_block_repeated_three_times_is_found_at_its_first_copy() -> None:
    text = "import pandas as pd\n" + "df['a'] = 1\ndf['b'] = 2\n" * 3 + "df['"
    assert repetition_start(text) == 3


def test_a_line_printed_twice_is_not_a_loop() -> None:
    assert repetition_start("print(x)\nprint(x)\nprint(y)\n") is None


def test_repeated_closing_brackets_are_not_a_loop() -> None:
    assert repetition_start("f(\n)\n)\n)\n)\n") is None
