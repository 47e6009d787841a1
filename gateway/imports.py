"""POST /api/imports (a multipart upload of the bank's account list) and GET /api/imports/{id}.

A small file (at most KINDLY_IMPORT_INLINE_ROWS rows, default 200) is imported during the request and the
answer is its report (200). A bigger one is kept under KINDLY_IMPORT_DIR and imported by a Celery task on the
queue: the answer is 202 with the import's id, and GET /api/imports/{id} gives its status and, once done, the
report. The date-of-birth hash is deliberately slow (kindly/privacy.py), so a few hundred new accounts already
take seconds."""
import os
import shutil
from pathlib import Path

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.auth import require_admin
from kindly.db import session_scope
from kindly.importer import ImportRefused, count_rows, file_sha256, run_import
from kindly.models import Import
from kindly.settings import ROOT

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])

SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")
# Files above this size are never counted during the request: they go to the queue.
INLINE_MAX_BYTES = 1 << 20


def inline_max_rows() -> int:
    return int(os.environ.get("KINDLY_IMPORT_INLINE_ROWS", "200"))


def import_dir() -> Path:
    return Path(os.environ.get("KINDLY_IMPORT_DIR", ROOT / "var" / "imports"))


def import_out(record: Import) -> dict:
    return {"id": record.id, "filename": record.filename, "status": record.status, "report": record.report,
            "error": record.error, "created_at": record.created_at, "finished_at": record.finished_at}


@router.post("/imports")
async def post_import(file: UploadFile = File(..., description="the account list, CSV or XLSX")):
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(status_code=422, detail=f"{file.filename!r}: send a .csv or .xlsx file")
    with session_scope() as session:
        record = Import(filename=Path(file.filename).name, sha256="", status="queued")
        session.add(record)
        session.flush()
        import_id = record.id
    folder = import_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{import_id}{suffix}"
    with path.open("wb") as out:
        await run_in_threadpool(shutil.copyfileobj, file.file, out)
    with session_scope() as session:
        session.get(Import, import_id).sha256 = file_sha256(path)
    if path.stat().st_size == 0:
        _fail(import_id, "the file is empty")
        raise HTTPException(status_code=422, detail="the file is empty")
    if path.stat().st_size > INLINE_MAX_BYTES or await run_in_threadpool(_row_count, path) > inline_max_rows():
        queued = _queue(import_id, path)
        if queued:
            return JSONResponse(status_code=202, content={"id": import_id, "status": "queued"})
    try:
        report = await run_in_threadpool(run_import, path, import_id, Path(file.filename).name, "api")
    except ImportRefused as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    finally:
        path.unlink(missing_ok=True)
    return report


@router.get("/imports/{import_id}")
def get_import(import_id: str) -> dict:
    with session_scope() as session:
        record = session.get(Import, import_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"import {import_id} not found")
        return import_out(record)


def _row_count(path: Path) -> int:
    try:
        return count_rows(path)
    except (ImportRefused, UnicodeError, ValueError):
        return 0  # the import itself says what is wrong


def _fail(import_id: str, error: str) -> None:
    with session_scope() as session:
        record = session.get(Import, import_id)
        record.status, record.error = "failed", error


def _queue(import_id: str, path: Path) -> bool:
    """Hands the import to the queue's worker; False when this installation has no queue."""
    try:
        from kindly.campaigns import import_task
    except ImportError:
        return False
    import_task.delay(import_id, str(path))
    return True
