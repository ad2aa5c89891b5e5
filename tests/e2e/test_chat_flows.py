"""Uploading, asking, streaming, stopping and coming back to a conversation, as a person does it in the browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

RUN_SECONDS = 60_000
"""Playwright timeout (ms) for a demo-model run, which includes one real sandbox execution."""


def upload(page: Any, path: Path) -> Any:
    page.set_input_files("#file-input", str(path))
    chip = page.locator(".attachment.ready").last
    expect(chip).to_be_visible(timeout=RUN_SECONDS)
    return chip


def ask(page: Any, text: str) -> Any:
    """Type a question, press Enter, and return the new answer's element."""
    count = page.locator(".msg.assistant").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    answer = page.locator(".msg.assistant").nth(count)
    expect(answer).to_be_visible()
    return answer


def test_upload_shows_columns_and_rows(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    chip = upload(signed_in, sales_csv)
    expect(chip).to_contain_text("sales.csv")
    expect(chip).to_contain_text("8 rows × 4 columns")
    chip.locator(".file-details summary").click()
    header = chip.locator(".file-preview th")
    expect(header).to_have_text(["region", "month", "revenue", "units"])
    expect(chip.locator(".file-head")).to_contain_text("East,Jan,143.2,15")
    shot("10-upload-preview")


def test_drag_and_drop_uploads_the_file(signed_in: Any, sales_csv: Path) -> None:
    content = sales_csv.read_text()
    signed_in.evaluate(
        """(content) => {
          const data = new DataTransfer();
          data.items.add(new File([content], "dropped.csv", { type: "text/csv" }));
          const chat = document.getElementById("chat");
          chat.dispatchEvent(new DragEvent("dragenter", { dataTransfer: data, bubbles: true }));
          chat.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
        }""",
        content,
    )
    expect(signed_in.locator(".attachment.ready")).to_contain_text("dropped.csv")
    expect(signed_in.locator("#drop-overlay")).to_be_hidden()


def test_too_large_upload_says_so(signed_in: Any, tmp_path: Path, shot: Any) -> None:
    big = tmp_path / "big.csv"
    big.write_text("a,b\n" + "123456789,987654321\n" * 80_000)  # ~1.6 MB, over the 1 MB test limit
    signed_in.set_input_files("#file-input", str(big))
    expect(signed_in.locator("#banner")).to_contain_text("Upload too large", timeout=RUN_SECONDS)
    expect(signed_in.locator(".attachment")).to_have_count(0)
    shot("11-upload-too-large")


def test_shift_enter_adds_a_line_and_enter_sends(signed_in: Any) -> None:
    signed_in.fill("#input", "first line")
    signed_in.press("#input", "Shift+Enter")
    signed_in.type("#input", "second line")
    assert signed_in.input_value("#input") == "first line\nsecond line"
    expect(signed_in.locator(".msg.user")).to_have_count(0)
    signed_in.press("#input", "Enter")
    expect(signed_in.locator(".msg.user .bubble")).to_have_text("first line\nsecond line")
    assert signed_in.input_value("#input") == ""


def test_answer_streams_with_steps_code_and_a_figure(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    upload(signed_in, sales_csv)
    answer = ask(signed_in, "Plot the average revenue by region")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    figure = answer.locator(".figure img")
    expect(figure).to_be_visible()
    assert figure.evaluate("img => img.naturalWidth") > 100  # a real PNG, fetched with the token
    expect(answer.locator(".answer")).to_contain_text("Saved the chart to revenue_by_region.png")  # the run's output
    expect(answer.locator(".steps-status")).to_contain_text("steps")
    shot("20-answer-with-figure")
    answer.locator(".steps > summary").click()
    expect(answer.locator(".step-title")).to_contain_text(["python_coder"])
    expect(answer.locator("pre.code")).to_contain_text("plt.savefig")
    expect(answer.locator("pre.code .hljs-keyword").first).to_be_visible()  # highlighted
    shot("21-steps-panel")
    assert signed_in.errors == []


def test_follow_up_reuses_the_earlier_variable(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    upload(signed_in, sales_csv)
    first = ask(signed_in, "What is the average revenue by region?")
    expect(first).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    expect(first.locator(".answer")).to_contain_text("147.0")  # East: (143.2 + 150.8) / 2, computed in the sandbox
    second = ask(signed_in, "Which region has the highest average revenue?")
    expect(second).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    expect(second.locator(".answer")).to_contain_text("Highest: East")
    shot("22-follow-up")


def test_stop_cancels_a_long_run(signed_in: Any, sales_csv: Path, servers: Any, user: Any, shot: Any) -> None:
    upload(signed_in, sales_csv)
    answer = ask(signed_in, "Run a slow simulation on this data")
    expect(signed_in.locator("#stop")).to_be_visible()
    # Streaming: the generated code is on screen while the run is still going.
    expect(answer.locator("pre.code")).to_contain_text("time.sleep", timeout=RUN_SECONDS)
    expect(answer).to_have_attribute("data-state", "running")
    shot("30-long-run-streaming")
    signed_in.click("#stop")
    expect(answer).to_have_attribute("data-state", "stopped", timeout=20_000)
    expect(answer).to_contain_text("Stopped")
    expect(signed_in.locator("#send")).to_be_visible()
    shot("31-stopped")
    conversation_id = re.search(r"#c=(\w+)", signed_in.url).group(1)  # type: ignore[union-attr]
    token = json.loads(signed_in.evaluate("localStorage.getItem('analysis-server.session')"))["access_token"]
    detail = httpx.get(f"{servers.backend}/api/conversations/{conversation_id}",
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert [run["status"] for run in detail["runs"]] == ["cancelled"]
    signed_in.reload()
    expect(signed_in.locator(".msg.assistant .run-error")).to_have_text("Stopped: the run was stopped")


def test_reload_finds_the_conversation_with_its_steps_and_figure(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    upload(signed_in, sales_csv)
    answer = ask(signed_in, "Plot the average revenue by region")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    signed_in.reload()
    expect(signed_in.locator("#conversations .conv")).to_have_count(1)
    expect(signed_in.locator("#conversations")).to_contain_text("Plot the average revenue by region")
    expect(signed_in.locator(".msg.user")).to_have_text(["Plot the average revenue by region"])
    restored = signed_in.locator(".msg.assistant")
    expect(restored.locator(".figure img")).to_be_visible()
    expect(restored.locator(".answer")).to_contain_text("Saved the chart to revenue_by_region.png")
    restored.locator(".steps > summary").click()
    expect(restored.locator("pre.code")).to_contain_text("plt.savefig")
    shot("40-reloaded-conversation")
    signed_in.click("#new-chat")
    expect(signed_in.locator("#empty-state")).to_be_visible()
    signed_in.click("#conversations .conv-open")
    expect(signed_in.locator(".msg.assistant .figure img")).to_be_visible()


def test_rename_and_delete_a_conversation(signed_in: Any, shot: Any) -> None:
    answer = ask(signed_in, "hello")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    conv = signed_in.locator("#conversations .conv")
    expect(conv).to_have_count(1)
    signed_in.once("dialog", lambda dialog: dialog.accept("Renamed chat"))
    conv.get_by_role("button", name=re.compile("^Rename")).click()
    expect(conv).to_contain_text("Renamed chat")
    shot("50-renamed")
    signed_in.once("dialog", lambda dialog: dialog.accept())
    signed_in.locator("#conversations .conv").get_by_role("button", name=re.compile("^Delete")).click()
    expect(signed_in.locator("#conversations")).to_contain_text("No conversations yet")
    expect(signed_in.locator("#empty-state")).to_be_visible()


def test_model_unavailable_is_explained(signed_in: Any, shot: Any) -> None:
    signed_in.route(
        re.compile(r".*/api/chat(\?.*)?$"),
        lambda route: route.fulfill(status=503, content_type="application/json",
                                    body=json.dumps({"detail": "no usable LLM provider"})),
    )
    answer = ask(signed_in, "What is the average revenue?")
    expect(answer.locator(".run-error")).to_have_text("Model unavailable: no usable LLM provider")
    expect(signed_in.locator("#send")).to_be_visible()
    shot("60-model-unavailable")


def test_upload_shows_progress_while_sending(signed_in: Any, tmp_path: Path, shot: Any) -> None:
    data = tmp_path / "medium.csv"
    data.write_text("a,b\n" + "12345,67890\n" * 60_000)  # ~720 KB, under the 1 MB test limit
    cdp = signed_in.context.new_cdp_session(signed_in)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024})
    signed_in.set_input_files("#file-input", str(data))
    bar = signed_in.locator(".attachment.uploading progress")
    signed_in.wait_for_function(
        "() => { const p = document.querySelector('.attachment.uploading progress'); return p && p.value > 0.1; }"
    )
    fraction = float(bar.get_attribute("value") or bar.evaluate("p => p.value"))
    shot("12-upload-progress")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    expect(signed_in.locator(".attachment.ready")).to_contain_text("medium.csv", timeout=RUN_SECONDS)
    assert 0 < fraction < 1


def test_pdf_upload_shows_pages_and_indexing(signed_in: Any, policy_pdf: Path, shot: Any) -> None:
    chip = upload(signed_in, policy_pdf)
    expect(chip).to_contain_text("1 page")
    expect(chip).to_contain_text("indexed for search")
    chip.locator(".file-details summary").click()
    expect(chip.locator(".file-head")).to_contain_text("120 EUR per night")
    shot("13-pdf-preview")


def test_question_about_a_pdf_is_answered_with_a_citation(signed_in: Any, policy_pdf: Path, shot: Any) -> None:
    upload(signed_in, policy_pdf)
    answer = ask(signed_in, "What does the travel policy document say about hotel costs?")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    expect(answer.locator(".answer blockquote")).to_contain_text("120 EUR per night")
    expect(answer.locator(".answer")).to_contain_text("travel-policy.pdf p.1")
    shot("23-pdf-answer")


def test_plan_execute_strategy_shows_the_plan(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    upload(signed_in, sales_csv)
    signed_in.select_option("#strategy", "plan_execute")
    answer = ask(signed_in, "What is the average revenue by region?")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    expect(answer.locator(".msg-meta")).to_have_text("strategy: plan_execute")
    answer.locator(".steps > summary").click()
    expect(answer.locator(".plan")).to_contain_text("What is the average revenue by region?")
    shot("24-plan-execute")


def test_generated_file_downloads_with_the_token(signed_in: Any, sales_csv: Path, shot: Any) -> None:
    upload(signed_in, sales_csv)
    answer = ask(signed_in, "Export the average revenue by region as a CSV file")
    expect(answer).to_have_attribute("data-state", "done", timeout=RUN_SECONDS)
    link = answer.locator(".file-link")
    expect(link).to_contain_text("avg_revenue_by_region.csv")
    shot("25-file-link")
    with signed_in.expect_download() as info:
        link.click()
    saved = Path(info.value.path())
    assert saved.read_text().splitlines()[0] == "region,mean,min,max"
    assert info.value.suggested_filename == "avg_revenue_by_region.csv"
