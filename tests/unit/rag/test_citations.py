"""Citations and the passage text the LLM reads."""

from __future__ import annotations

from backend.tools.rag import Hit, citation, format_hits


def hit(text: str = "Sales rose 4% in March.", page: int | None = 3, name: str = "report.pdf") -> Hit:
    return Hit(chunk_id="f1:000007", file_id="f1", file_name=name, page=page, text=text, score=0.03)


def test_citation_names_file_and_page() -> None:
    assert citation("report.pdf", 3) == "[report.pdf p.3]"


def test_citation_without_page_names_only_the_file() -> None:
    assert hit(page=None, name="notes.md").citation == "[notes.md]"


def test_formatted_hits_show_citation_chunk_id_and_text() -> None:
    text = format_hits([hit()], query="sales in march")
    assert "[1] [report.pdf p.3] (chunk f1:000007)\nSales rose 4% in March." in text
    assert "cite them as shown, e.g. [report.pdf p.3]" in text


def test_long_passages_are_cut_with_an_ellipsis() -> None:
    text = format_hits([hit(text="word " * 500)], query="q", max_chars=100)
    passage = text.rsplit("\n", 1)[1]
    assert len(passage) == 100 and passage.endswith("…")


def test_no_hits_says_so_instead_of_inventing_passages() -> None:
    assert format_hits([], query="unicorns") == "No passages in the uploaded documents match 'unicorns'."
