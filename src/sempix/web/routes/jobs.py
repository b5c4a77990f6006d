"""Background jobs: status, progress pushed as server-sent events, cancellation, result files.

=======================================  ===========================================================
``GET  /api/jobs/{job}``                 ``{id, kind, state, progress, message, error}``
``GET  /api/jobs/{job}/events``          ``text/event-stream``: one ``data: {...}`` status per
                                         change, the last one with a finished state
                                         (done|error|cancelled)
``POST /api/jobs/{job}/cancel``          stop it (queued: never runs; running: at its next progress)
``GET  /api/jobs/{job}/info``            a finished tool job's JSON summary and file list
``GET  /api/jobs/{job}/files/{name}``    one of its files (``?download=1`` adds a file name)
``GET  /api/jobs/{job}/result``          the main file (resize: the resized PNG)
=======================================  ===========================================================

States: ``queued -> running -> done | error | cancelled``. A job's files belong to its session: they
count in the memory budget and are deleted with it (410 afterwards).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from sempix.errors import InputError, NotFoundError
from sempix.web.common import bytes_response, get_state
from sempix.web.session import JobOutput

router = APIRouter()


@router.get("/api/jobs/{job_id}")
def job_status(request: Request, job_id: str):
    return get_state(request).jobs.status(job_id)


@router.get("/api/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str):
    jobs = get_state(request).jobs
    job = jobs.get(job_id)  # 404 before the stream starts

    async def stream():
        last = None
        idle = 0.0
        yield "retry: 1000\n\n"
        while True:
            if await request.is_disconnected():
                return
            st = job.as_dict()
            key = (st["state"], st["progress"], st["message"])
            if key != last:
                last = key
                idle = 0.0
                yield f"event: status\ndata: {json.dumps(st)}\n\n"
                if job.finished_state:
                    return
            else:
                idle += 0.1
                if idle >= 15.0:  # keep-alive comment through proxies
                    idle = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(0.1)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/api/jobs/{job_id}/cancel")
def job_cancel(request: Request, job_id: str):
    return get_state(request).jobs.cancel(job_id)


def _output(request: Request, job_id: str) -> JobOutput:
    out = get_state(request).jobs.result(job_id)
    if not isinstance(out, JobOutput):
        raise InputError("this job has no downloadable result")
    return out


@router.get("/api/jobs/{job_id}/info")
def job_info(request: Request, job_id: str):
    out = _output(request, job_id)
    return {"job": job_id, "info": out.info, "files": out.listing(job_id)}


@router.get("/api/jobs/{job_id}/files/{name}")
def job_file(request: Request, job_id: str, name: str, download: int = 0):
    out = _output(request, job_id)
    if name not in out.files:
        raise NotFoundError(f"no file {name!r} in this job's result")
    body, media = out.files[name]
    return bytes_response(body, media, filename=name if download else None)


@router.get("/api/jobs/{job_id}/result")
def job_result(request: Request, job_id: str):
    out = _output(request, job_id)
    main = out.info.get("main") or next(iter(out.files), None)
    if main is None:
        raise NotFoundError("this job produced no file")
    body, media = out.files[main]
    return bytes_response(body, media, filename=out.info.get("download_name", main))
