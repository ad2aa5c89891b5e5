"""Uploads and the user's files: upload (one or many), list, download, delete."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, File, HTTPException, Query, UploadFile, status
from fastapi.responses import FileResponse

from backend.api.deps import CurrentUser, DocumentsDep, RepoDep, SettingsDep
from backend.api.responses import unprocessable
from backend.api.schemas import FileOut, UploadResponse
from backend.core.settings import Settings
from backend.storage.models import StoredFile, new_id
from backend.storage.uploads import DOCUMENT_KINDS, StoredUpload, store_upload

MAX_FILES_PER_UPLOAD = 20
PAGE_LIMIT = 200
MAX_OFFSET = 1_000_000

router = APIRouter(prefix="/api", tags=["files"])
_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "no such file (or not yours)"},
    413: {"description": "a file is over the size limit; nothing was kept"},
    415: {"description": "unsupported type, or content that does not match its name; nothing was kept"},
}
_UPLOAD_ERRORS = {**_ERRORS, **unprocessable("malformed form, empty file or too many files; nothing was kept")}


def user_upload_dir(settings: Settings, user_id: str) -> Path:
    return settings.uploads_dir / user_id


@router.post("/upload", response_model=UploadResponse, status_code=status.HTTP_201_CREATED,
             responses=_UPLOAD_ERRORS)
async def upload(
    files: Annotated[list[UploadFile], File(description="CSV, TSV, XLSX, JSON, Parquet, PDF, TXT or MD files.",
                                            min_length=1, max_length=MAX_FILES_PER_UPLOAD)],
    user: CurrentUser,
    repo: RepoDep,
    settings: SettingsDep,
    documents: DocumentsDep,
) -> UploadResponse:
    """All or nothing: if any file is refused, none of this request's files is kept."""
    dest = user_upload_dir(settings, user.id)
    staged: list[StoredUpload] = []
    try:
        rows = []
        for item in files:
            stored = await to_thread.run_sync(partial(
                store_upload, item.file, original_name=item.filename or "", file_id=new_id(), dest_dir=dest,
                max_bytes=settings.max_upload_mb * 1024 * 1024,
            ))
            staged.append(stored)
            meta = await to_thread.run_sync(partial(documents.describe, stored.path, name=stored.name))
            rows.append(StoredFile(id=stored.file_id, name=stored.name, stored_name=stored.stored_name,
                                   kind=stored.kind, media_type=stored.media_type, size_bytes=stored.size_bytes,
                                   sha256=stored.sha256, meta={"description": meta}))
        await to_thread.run_sync(repo.add_files, rows)
    except BaseException:
        for stored in staged:
            stored.path.unlink(missing_ok=True)
        raise
    for row, stored in zip(rows, staged, strict=True):
        if stored.kind in DOCUMENT_KINDS:
            rag = await to_thread.run_sync(partial(
                documents.index, user_id=user.id, file_id=row.id, path=stored.path, name=stored.name))
            await to_thread.run_sync(partial(repo.update_file_meta, row.id, rag=rag))
    return UploadResponse(files=[FileOut.model_validate(row) for row in rows])


@router.get("/files", response_model=list[FileOut])
def list_files(repo: RepoDep, limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[FileOut]:
    return [FileOut.model_validate(row) for row in repo.list_files(limit=limit, offset=offset)]


@router.get("/files/{file_id}", response_class=FileResponse, responses=_ERRORS)
def download_file(file_id: str, repo: RepoDep, settings: SettingsDep) -> FileResponse:
    row = repo.get_file(file_id)
    path = user_upload_dir(settings, row.user_id) / row.stored_name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"content of file {file_id} is missing on the server")
    return FileResponse(path, media_type=row.media_type, filename=row.name)


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
def delete_file(file_id: str, repo: RepoDep, settings: SettingsDep, documents: DocumentsDep) -> None:
    """Removes the record, the stored bytes and the file's RAG chunks."""
    row = repo.delete_file(file_id)
    (user_upload_dir(settings, row.user_id) / row.stored_name).unlink(missing_ok=True)
    documents.forget(user_id=row.user_id, file_id=row.id)
