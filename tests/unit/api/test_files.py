"""Upload, list, download and delete files; size limits, type sniffing, traversal names, zip bombs, isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.core.settings import Settings
from tests.hardening import hostile_files as hf

CSV = b"name,score\nann,1\nbob,4\n"


def _upload(client: TestClient, headers: dict[str, str], *files: tuple[str, bytes]) -> object:
    return client.post("/api/upload", headers=headers, files=[("files", (name, data)) for name, data in files])


def _stored_files(settings: Settings) -> list[Path]:
    root = settings.uploads_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_csv_records_columns_and_rows(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/upload", headers=alice, files=[("files", ("scores.csv", CSV))])
    assert response.status_code == 201, response.text
    (stored,) = response.json()["files"]
    assert stored["name"] == "scores.csv"
    assert stored["kind"] == "csv"
    assert stored["size_bytes"] == len(CSV)
    description = stored["meta"]["description"]
    assert [c["name"] for c in description["columns"]] == ["name", "score"]
    assert description["rows"] == 2


def test_upload_many_files_in_one_request(client: TestClient, alice: dict[str, str]) -> None:
    files = [("files", ("a.csv", CSV)), ("files", ("b.json", b'[{"x": 1}]')), ("files", ("c.xlsx", hf.xlsx()))]
    response = client.post("/api/upload", headers=alice, files=files)
    assert response.status_code == 201, response.text
    assert [f["kind"] for f in response.json()["files"]] == ["csv", "json", "xlsx"]


def test_more_than_20_files_in_one_request_is_a_validation_error(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/upload", headers=alice, files=[("files", (f"{n}.csv", CSV)) for n in range(21)])
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)  # the documented HTTPValidationError shape


def test_documents_are_indexed_for_rag_and_tables_are_not(
    client: TestClient, alice: dict[str, str], documents: object
) -> None:
    response = client.post("/api/upload", headers=alice,
                           files=[("files", ("notes.md", b"# Notes\nhello")), ("files", ("t.csv", CSV))])
    notes, table = response.json()["files"]
    assert documents.indexed == [notes["id"]]  # type: ignore[attr-defined]
    assert notes["meta"]["rag"] == {"indexed": True, "chunks": 1}
    assert "rag" not in table["meta"]


def test_oversize_upload_is_413_and_leaves_nothing_on_disk(
    settings: Settings, app_factory: object, signup: object
) -> None:
    small = settings.model_copy(update={"max_upload_mb": 1})
    client = app_factory(small)  # type: ignore[operator]
    headers = client.post("/api/auth/register", json={"username": "alice", "password": "correct horse battery"})
    token = client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"}).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    big = b"a,b\n" + b"1,2\n" * (300 * 1024)  # 1.2 MB
    response = client.post("/api/upload", headers=auth, files=[("files", ("ok.csv", CSV)), ("files", ("big.csv", big))])
    assert headers.status_code == 201
    assert response.status_code == 413
    assert _stored_files(small) == []
    assert client.get("/api/files", headers=auth).json() == []


def test_request_body_over_the_total_cap_is_refused_before_reading(
    settings: Settings, app_factory: object
) -> None:
    client = app_factory(settings.model_copy(update={"max_upload_mb": 1}))  # type: ignore[operator]
    headers = {"Content-Length": str(50 * 1024 * 1024), "Content-Type": "multipart/form-data; boundary=b"}
    response = client.post("/api/upload", content=b"x" * 10, headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize(("name", "data"), [
    ("photo.csv", hf.PNG_AS_CSV),
    ("report.pdf", b"just some text pretending"),
    ("sheet.xlsx", CSV),
    ("table.parquet", CSV),
    ("data.json", b"name,score\n1,2\n"),
    ("archive.xlsx", b"PK\x03\x04" + b"\x00" * 100),
])
def test_content_that_does_not_match_its_name_is_415(
    client: TestClient, alice: dict[str, str], settings: Settings, name: str, data: bytes
) -> None:
    response = client.post("/api/upload", headers=alice, files=[("files", (name, data))])
    assert response.status_code == 415, response.text
    assert _stored_files(settings) == []


@pytest.mark.parametrize("name", ["tool.exe", "script.sh", "noextension", "old.xls"])
def test_unsupported_types_are_415(client: TestClient, alice: dict[str, str], name: str) -> None:
    assert client.post("/api/upload", headers=alice, files=[("files", (name, CSV))]).status_code == 415


def test_a_bad_file_in_a_batch_keeps_none_of_the_batch(
    client: TestClient, alice: dict[str, str], settings: Settings
) -> None:
    response = client.post("/api/upload", headers=alice,
                           files=[("files", ("good.csv", CSV)), ("files", ("bad.csv", hf.PNG_AS_CSV))])
    assert response.status_code == 415
    assert _stored_files(settings) == []
    assert client.get("/api/files", headers=alice).json() == []


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd.csv", "passwd.csv"),
    ("..\\..\\windows\\win.csv", "win.csv"),
    ("evil\x00name.csv", "evil_00name.csv"),  # httpx sends NUL as %00; the sanitiser turns % into _
    (".hidden.csv", "hidden.csv"),
])
def test_traversal_and_control_names_are_stored_safely(
    client: TestClient, alice: dict[str, str], settings: Settings, given: str, expected: str
) -> None:
    response = client.post("/api/upload", headers=alice, files=[("files", (given, CSV))])
    assert response.status_code == 201, response.text
    (stored,) = response.json()["files"]
    assert stored["name"] == expected
    (on_disk,) = _stored_files(settings)
    assert on_disk.parent.parent == settings.uploads_dir
    assert on_disk.name == f"{stored['id']}.csv"


def test_very_long_names_are_shortened_keeping_the_extension(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/upload", headers=alice, files=[("files", ("x" * 4000 + ".csv", CSV))])
    name = response.json()["files"][0]["name"]
    assert name.endswith(".csv")
    assert len(name) <= 120


def test_xlsx_zip_bomb_is_rejected_before_inflating(
    client: TestClient, alice: dict[str, str], settings: Settings
) -> None:
    bomb = hf.zip_bomb_xlsx(inflated_mb=50)
    response = client.post("/api/upload", headers=alice, files=[("files", ("bomb.xlsx", bomb))])
    assert response.status_code == 415
    assert "zip bomb" in response.json()["detail"]
    assert _stored_files(settings) == []


@pytest.mark.parametrize("body", [b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.csv\"\r\n",
                                  b"garbage without boundaries", b"--b\r\n" + b"x" * 20000 + b"\r\n\r\n--b--"])
def test_malformed_multipart_body_is_422(client: TestClient, alice: dict[str, str], body: bytes) -> None:
    headers = {**alice, "Content-Type": "multipart/form-data; boundary=b"}
    assert client.post("/api/upload", headers=headers, content=body).status_code == 422


def test_empty_upload_request_is_422(client: TestClient, alice: dict[str, str]) -> None:
    assert client.post("/api/upload", headers=alice).status_code == 422


def test_upload_requires_a_token(client: TestClient) -> None:
    assert client.post("/api/upload", files=[("files", ("a.csv", CSV))]).status_code == 401


def test_files_are_listed_only_for_their_owner(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    client.post("/api/upload", headers=alice, files=[("files", ("a.csv", CSV))])
    assert [f["name"] for f in client.get("/api/files", headers=alice).json()] == ["a.csv"]
    assert client.get("/api/files", headers=bob).json() == []


def test_download_returns_the_bytes_with_the_original_name(client: TestClient, alice: dict[str, str]) -> None:
    file_id = client.post("/api/upload", headers=alice, files=[("files", ("a.csv", CSV))]).json()["files"][0]["id"]
    response = client.get(f"/api/files/{file_id}", headers=alice)
    assert response.status_code == 200
    assert response.content == CSV
    assert 'filename="a.csv"' in response.headers["content-disposition"]


def test_downloads_and_errors_tell_browsers_not_to_sniff_the_type(
    client: TestClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    made = client.post("/api/upload", headers=alice, files=[("files", ("page.csv", hf.HTML_AS_CSV))])
    assert made.status_code == 201, made.text
    file_id = made.json()["files"][0]["id"]
    download = client.get(f"/api/files/{file_id}", headers=alice)
    assert download.status_code == 200 and download.content == hf.HTML_AS_CSV
    assert download.headers["content-type"].startswith("text/csv")  # declared CSV, never rendered as the HTML
    assert download.headers["x-content-type-options"] == "nosniff"
    refused = client.get(f"/api/files/{file_id}", headers=bob)
    assert refused.status_code == 404
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_another_users_file_is_404_for_download_and_delete(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], settings: Settings
) -> None:
    file_id = client.post("/api/upload", headers=alice, files=[("files", ("a.csv", CSV))]).json()["files"][0]["id"]
    assert client.get(f"/api/files/{file_id}", headers=bob).status_code == 404
    assert client.delete(f"/api/files/{file_id}", headers=bob).status_code == 404
    assert len(_stored_files(settings)) == 1


def test_delete_removes_record_bytes_and_rag_chunks(
    client: TestClient, alice: dict[str, str], settings: Settings, documents: object
) -> None:
    file_id = client.post("/api/upload", headers=alice,
                          files=[("files", ("n.txt", b"some notes"))]).json()["files"][0]["id"]
    assert client.delete(f"/api/files/{file_id}", headers=alice).status_code == 204
    assert _stored_files(settings) == []
    assert client.get(f"/api/files/{file_id}", headers=alice).status_code == 404
    assert documents.forgotten == [file_id]  # type: ignore[attr-defined]
