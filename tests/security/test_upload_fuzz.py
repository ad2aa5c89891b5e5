"""Upload fuzzing: hostile names and bodies, oversize, zip bombs, truncated Parquet, active PDFs, polyglots.

Every answer is a 4xx, or a 2xx for a file that really is what its name says; never a 5xx. After a refusal
the uploads directory is exactly as before (no partial, no first-file-of-many), and no upload ever writes
outside it. Accepted files come back byte for byte, under a safe name, as attachments.

Multipart bodies are built by hand so the server sees exactly what a hostile client would send (raw NUL,
CR/LF, quotes and unencodable names in the filename), not what an HTTP library is willing to produce.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.core.settings import Settings
from backend.storage.uploads import KIND_BY_EXTENSION, MAX_FILENAME_CHARS
from tests.hardening import hostile_files as hf
from tests.hardening.inproc import hardened_settings, inprocess_app, sign_up
from tests.hardening.tally import Tally

MAX_UPLOAD_MB = 2
EXTENSIONS = sorted(KIND_BY_EXTENSION)
FUZZ_EXAMPLES = 120
CATEGORY = "fuzz: upload"


@dataclass
class Uploader:
    client: TestClient
    settings: Settings
    headers: dict[str, str]

    def snapshot(self, root: Path) -> dict[str, int]:
        return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} \
            if root.exists() else {}

    def outside_uploads(self) -> dict[str, int]:
        """Files of the data dir that no upload may touch (the database and logs change by themselves)."""
        root = self.settings.data_dir
        return {name: size for name, size in self.snapshot(root).items()
                if not name.startswith(("uploads/", "logs/", "app.db"))}

    def post(self, *parts: tuple[bytes, bytes]) -> object:
        """POST /api/upload with raw (filename bytes, content) parts."""
        boundary = secrets.token_hex(16).encode()
        head = b'\r\nContent-Disposition: form-data; name="files"; filename="'
        body = b"".join(b"--" + boundary + head + name + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
                        + data + b"\r\n" for name, data in parts)
        body += b"--" + boundary + b"--\r\n"
        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}
        return self.client.post("/api/upload", content=body, headers=headers)


@pytest.fixture(scope="module")
def uploader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uploader]:
    settings = hardened_settings(tmp_path_factory.mktemp("uploads") / "data", max_upload_mb=MAX_UPLOAD_MB)
    with inprocess_app(settings) as (_app, client):
        headers, _ = sign_up(client, "uploader")
        yield Uploader(client=client, settings=settings, headers=headers)


def _safe_name(name: str) -> bool:
    return (0 < len(name) <= MAX_FILENAME_CHARS and not name.startswith((".", " ", "-"))
            and not any(ch in name for ch in "/\\\x00") and Path(name).suffix.lower() in KIND_BY_EXTENSION
            and not any(unicodedata.category(ch).startswith("C") for ch in name))


def check_upload(up: Uploader, tally: Tally, *parts: tuple[bytes, bytes]) -> object:
    """Send, then check the invariants that hold whatever the input; returns the response."""
    uploads, outside = up.snapshot(up.settings.uploads_dir), up.outside_uploads()
    response = up.post(*parts)
    tally.case(CATEGORY)
    if response.status_code >= 500:  # type: ignore[attr-defined]
        tally.fail(CATEGORY)
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, response.text  # type: ignore[attr-defined]
    assert up.outside_uploads() == outside, "an upload wrote outside the uploads directory"
    if status != 201:
        assert 400 <= status < 500, status
        assert up.snapshot(up.settings.uploads_dir) == uploads, "a refused upload left something behind"
        return response
    stored = response.json()["files"]  # type: ignore[attr-defined]
    assert len(stored) == len(parts)
    user_dir = next(p for p in up.settings.uploads_dir.iterdir() if p.is_dir())
    for item, (_, data) in zip(stored, parts, strict=True):
        assert _safe_name(item["name"]), f"unsafe stored name {item['name']!r}"
        on_disk = user_dir / f"{item['id']}{Path(item['name']).suffix.lower()}"
        assert on_disk.read_bytes() == data
        download = up.client.get(f"/api/files/{item['id']}", headers=up.headers)
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-disposition"].startswith("attachment"), download.headers
    return response


# --- hypothesis: names and bodies -------------------------------------------------------------------
TRAVERSAL = ["", "../", "..\\", "../../../../etc/", "/etc/", "....//", "./", "%2e%2e%2f", "\x00", "C:\\Windows\\",
             "\\\\server\\share\\", "\u202e", "\u2215", "\uff0f..\uff0f", "~/", "-", " ", "."]
SUFFIXES = [*EXTENSIONS, "", ".exe", ".csv.exe", ".csv\x00.exe", ". csv", ".CSV", ".csv.", ".csv ", ".Csv;.sh"]
NAMES = st.one_of(
    st.text(max_size=200),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(TRAVERSAL), st.text(max_size=60), st.sampled_from(SUFFIXES)),
    st.text(min_size=300, max_size=4000).map(lambda s: s + ".csv"),
    st.sampled_from(["CON.csv", "nul.csv", "..csv", ".csv", "...", "\u202egpj.csv", "a/../../b.csv", "\x00.csv",
                     'a".csv', "a\r\nContent-Type: text/html\r\n\r\n.csv", "a\";filename=b.exe.csv",
                     "x" * 255 + ".csv"]),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(name=NAMES)
def test_hostile_file_names(uploader: Uploader, tally: Tally, name: str) -> None:
    check_upload(uploader, tally, (name.encode("utf-8", "surrogatepass"), hf.CSV))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(extension=st.sampled_from(EXTENSIONS),
       data=st.one_of(st.binary(min_size=1, max_size=4096), st.text(min_size=1, max_size=2000).map(str.encode),
                      st.sampled_from([hf.CSV, hf.parquet(), hf.xlsx(), hf.pdf_with_javascript()]).flatmap(
                          lambda good: st.integers(0, len(good)).map(lambda cut: good[:cut] or b"x"))))
def test_random_and_truncated_bodies(uploader: Uploader, tally: Tally, extension: str, data: bytes) -> None:
    """(`tally` is shared by all examples on purpose: it sums them.)"""
    check_upload(uploader, tally, (f"fuzz{extension}".encode(), data))


# --- named hostile files ------------------------------------------------------------------------------
REFUSED = [
    ("oversize", "big.csv", b"a,b\n" + b"1,2\n" * (MAX_UPLOAD_MB * 1024 * 1024 // 4 + 1), 413),
    ("empty", "empty.csv", b"", 422),
    ("zip_bomb_xlsx", "bomb.xlsx", hf.zip_bomb_xlsx(), 415),
    ("zip_10k_entries_xlsx", "many.xlsx", hf.many_entries_xlsx(), 415),
    ("billion_laughs_xlsx", "laughs.xlsx", hf.billion_laughs_xlsx(), 415),
    ("zip_not_a_workbook", "plain.xlsx", hf.not_a_workbook_zip(), 415),
    ("macro_workbook_as_xlsx", "macro.xlsx", hf.macro_workbook(), 415),
    ("truncated_parquet", "cut.parquet", hf.truncated_parquet(), 415),
    ("parquet_broken_footer", "broken.parquet", hf.parquet_with_broken_footer(), 415),
    ("pdf_header_csv_body_as_csv", "poly.csv", hf.pdf_header_csv_body(), 415),
    ("pdf_header_csv_body_as_pdf", "poly.pdf", hf.pdf_header_csv_body(), 415),
    ("csv_then_zip_as_csv", "poly2.csv", hf.csv_then_zip(), 415),
    ("csv_then_zip_as_xlsx", "poly2.xlsx", hf.csv_then_zip(), 415),
    ("zip_with_pdf_header_as_xlsx", "poly3.xlsx", hf.zip_with_pdf_header(), 415),
    ("zip_with_pdf_header_as_pdf", "poly3.pdf", hf.zip_with_pdf_header(), 415),  # was accepted: see sniff_family
    ("xlsx_as_csv", "sheet.csv", hf.xlsx(), 415),
    ("csv_as_json", "data.json", hf.CSV, 415),
    ("csv_as_parquet", "data.parquet", hf.CSV, 415),
    ("elf_as_txt", "run.txt", hf.ELF, 415),
    ("png_as_csv", "image.csv", hf.PNG_AS_CSV, 415),
    ("executable_name", "tool.exe", hf.CSV, 415),
]
ACCEPTED = [
    ("parquet", "table.parquet", hf.parquet()),
    ("xlsx", "sheet.xlsx", hf.xlsx()),
    ("pdf_with_javascript", "report.pdf", hf.pdf_with_javascript()),
    ("html_in_csv", "page.csv", hf.HTML_AS_CSV),
    ("formula_csv", "formulas.csv", hf.FORMULA_CSV),
]
"""Genuinely valid files: accepted, and only ever served back as attachments (never rendered by the browser)."""


@pytest.mark.parametrize(("case", "name", "data", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_hostile_file_is_refused(uploader: Uploader, tally: Tally, case: str, name: str, data: bytes,
                                 status: int) -> None:
    response = check_upload(uploader, tally, (name.encode(), data))
    assert response.status_code == status, response.text  # type: ignore[attr-defined]


@pytest.mark.parametrize(("case", "name", "data"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_valid_file_with_hostile_content_is_kept_inert(uploader: Uploader, tally: Tally, case: str, name: str,
                                                       data: bytes) -> None:
    response = check_upload(uploader, tally, (name.encode(), data))
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]


def test_one_bad_file_refuses_the_whole_request(uploader: Uploader, tally: Tally) -> None:
    response = check_upload(uploader, tally, (b"good.csv", hf.CSV), (b"bomb.xlsx", hf.zip_bomb_xlsx()))
    assert response.status_code == 415  # type: ignore[attr-defined]


def test_request_over_the_body_limit_is_refused_before_it_is_read(uploader: Uploader, tally: Tally) -> None:
    big = b"a,b\n" + b"1,2\n" * (5 * MAX_UPLOAD_MB * 1024 * 1024 // 4 + 1)  # over the whole-request limit
    response = check_upload(uploader, tally, (b"huge.csv", big))
    assert response.status_code == 413  # type: ignore[attr-defined]
