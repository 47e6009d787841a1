"""The gateway application: `uvicorn gateway.app:app`."""
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from channels.conversation import EngineUnavailable
from channels import sms, status, voice
from gateway import api, campaigns, console, imports, operations
from kindly.db import get_engine
from kindly.privacy import check_dob_key
from kindly.settings import settings

logger = logging.getLogger("kindly.gateway")


@asynccontextmanager
async def startup_checks(_app: FastAPI):
    check_dob_key(get_engine())
    yield


def create_app() -> FastAPI:
    settings.check_production_secrets()
    app = FastAPI(title="Kindly gateway", version="1.0", description="Twilio webhooks, REST API and agent console.",
                  lifespan=startup_checks)
    app.include_router(api.router)
    app.include_router(operations.router)
    app.include_router(imports.router)
    app.include_router(campaigns.router)
    app.include_router(voice.router)
    app.include_router(sms.router)
    app.include_router(status.router)
    app.include_router(console.router)

    @app.exception_handler(EngineUnavailable)
    async def engine_unavailable(_request: Request, error: EngineUnavailable) -> JSONResponse:
        logger.error("dialogue engine unavailable: %s", error)
        return JSONResponse(status_code=503, content={"detail": "the dialogue engine is unavailable, try again"})

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, error: OperationalError) -> JSONResponse:
        # A locked, read-only or unreachable database: the request may succeed later, it was not wrong.
        logger.error("database unavailable: %s", error.orig)
        return JSONResponse(status_code=503, content={"detail": "the database is unavailable, try again"}, headers={"Retry-After": "5"})

    @app.exception_handler(ValidationError)
    async def invalid_input(_request: Request, error: ValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": error.errors(include_url=False, include_context=False)})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


app = create_app()
