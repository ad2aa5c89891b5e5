"""Hermes `<tool_call>` parsing, streaming hold-back and message conversion for chat templates."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from backend.llm.tool_calls import ToolCallStreamSplitter, parse_tool_calls, to_chat_dicts, to_openai_tools


def test_tagged_tool_call_becomes_a_call_and_leaves_the_text() -> None:
    text = 'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    rest, calls = parse_tool_calls(text)
    assert rest == "Let me add."
    assert [(c["name"], c["args"]) for c in calls] == [("add", {"a": 1, "b": 2})]
    assert calls[0]["id"].startswith("call_")


def test_two_tagged_calls_are_both_parsed_in_order() -> None:
    text = (
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>'
    )
    _, calls = parse_tool_calls(text)
    assert [c["name"] for c in calls] == ["a", "b"]
    assert calls[0]["id"] != calls[1]["id"]


def test_arguments_given_as_a_json_string_are_decoded() -> None:
    _, calls = parse_tool_calls('<tool_call>{"name": "f", "arguments": "{\\"q\\": \\"x\\"}"}</tool_call>')
    assert calls[0]["args"] == {"q": "x"}


def test_unterminated_block_at_end_of_reply_still_parses() -> None:
    _, calls = parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {"n": 3}}')
    assert calls[0]["args"] == {"n": 3}


def test_malformed_json_in_block_stays_plain_text() -> None:
    text = '<tool_call>{"name": "f", "arguments": {oops}</tool_call>'
    rest, calls = parse_tool_calls(text)
    assert calls == []
    assert rest == text


def test_block_without_a_name_stays_plain_text() -> None:
    text = '<tool_call>{"arguments": {}}</tool_call>'
    assert parse_tool_calls(text) == (text, [])


def test_bare_json_call_counts_only_for_a_known_tool_name() -> None:
    text = '{"name": "add", "arguments": {"a": 17, "b": 25}}'
    assert parse_tool_calls(text, tool_names=["add"])[1][0]["args"] == {"a": 17, "b": 25}
    assert parse_tool_calls(text, tool_names=["other"]) == (text, [])
    assert parse_tool_calls(text) == (text, [])


def test_bare_json_calls_one_per_line_are_all_parsed() -> None:
    text = '{"name": "add", "arguments": {"a": 1, "b": 2}}\n{"name": "add", "arguments": {"a": 3, "b": 4}}'
    _, calls = parse_tool_calls(text, tool_names=["add"])
    assert [c["args"]["a"] for c in calls] == [1, 3]


def test_ordinary_json_answer_is_not_mistaken_for_a_call() -> None:
    text = '{"mean": 4.5, "name": "fare"}'
    assert parse_tool_calls(text, tool_names=["add"]) == (text, [])


def test_stream_splitter_releases_text_before_the_tag_and_holds_the_call() -> None:
    splitter = ToolCallStreamSplitter(["add"])
    pieces = ["Sure, ", "I will <tool", '_call>{"name": "add", ', '"arguments": {}}</tool_call>']
    shown = "".join(splitter.feed(p) for p in pieces)
    rest, calls = splitter.finish()
    assert shown == "Sure, I will "
    assert rest == ""
    assert [c["name"] for c in calls] == ["add"]


def test_stream_splitter_gives_back_a_false_tag_start() -> None:
    splitter = ToolCallStreamSplitter(["add"])
    shown = splitter.feed("a < b and <to") + splitter.feed("day> ok")
    rest, calls = splitter.finish()
    assert shown + rest == "a < b and <today> ok"
    assert calls == []


def test_stream_splitter_returns_malformed_held_text_verbatim() -> None:
    splitter = ToolCallStreamSplitter(["add"])
    shown = splitter.feed("<tool_call>{broken")
    rest, calls = splitter.finish()
    assert (shown, rest, calls) == ("", "<tool_call>{broken", [])


def test_stream_splitter_holds_a_reply_that_opens_like_bare_json() -> None:
    splitter = ToolCallStreamSplitter(["add"])
    shown = splitter.feed('{"name": "add", ') + splitter.feed('"arguments": {"a": 1, "b": 1}}')
    rest, calls = splitter.finish()
    assert (shown, rest) == ("", "")
    assert calls[0]["args"] == {"a": 1, "b": 1}


def test_messages_convert_to_template_dicts_with_dict_arguments() -> None:
    call = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c1"}])
    dicts = to_chat_dicts([SystemMessage("s"), HumanMessage("q"), call, ToolMessage("3", tool_call_id="c1")])
    assert [d["role"] for d in dicts] == ["system", "user", "assistant", "tool"]
    assert dicts[2]["tool_calls"][0]["function"] == {"name": "add", "arguments": {"a": 1}}
    assert dicts[3] == {"role": "tool", "content": "3", "tool_call_id": "c1"}


def test_list_content_is_flattened_to_text() -> None:
    dicts = to_chat_dicts([HumanMessage(content=[{"type": "text", "text": "a"}, "b"])])
    assert dicts[0]["content"] == "ab"


def test_tools_convert_to_openai_function_schemas() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    schema = to_openai_tools([add])[0]
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "add"
    assert set(schema["function"]["parameters"]["properties"]) == {"a", "b"}
