"""HTTP handlers: users and health."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.exceptions.responses import create_exception_response
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT, HTTP_503_SERVICE_UNAVAILABLE
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import EmailOutbox, User
from app.queue import SEND_EMAIL_TASK, send_job
from app.schemas import OutboxItem, UserCreate, UserRead, readable

HEALTH_TIMEOUT_SECONDS = 2.0
#: ids are PostgreSQL bigints; anything outside cannot exist (and must not reach the driver)
MAX_ID = 2**63 - 1
LIST_LIMIT = 100

log = logging.getLogger(__name__)


def readable_validation_errors(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """Litestar's 400 as it is (``detail``, ``extra: [{message, key, source}]``), with each
    body field's message a sentence a person understands instead of msgspec's wording (a
    pattern failure quotes the regular expression)."""
    extra = exc.extra
    if isinstance(extra, list):
        extra = [
            {**item, "message": readable(item["key"], item["message"])}
            if isinstance(item, dict)
            and item.get("source") == "body"
            and isinstance(item.get("key"), str)
            and isinstance(item.get("message"), str)
            else item
            for item in extra
        ]
    return create_exception_response(
        request, ValidationException(detail=exc.detail, extra=extra, headers=exc.headers)
    )


def _to_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        outbox=[
            OutboxItem(id=m.id, subject=m.subject, status=m.status, sent_at=m.sent_at)
            for m in user.outbox
        ],
    )


class UserController(Controller):
    """Create and read users."""

    path = "/api/users"

    @post("/", status_code=HTTP_201_CREATED)
    async def create_user(
        self, data: JSONBody[UserCreate], db_session: NamedDependency[AsyncSession], state: State
    ) -> UserRead:
        """Create a user and their welcome email (transactional outbox), then queue it."""
        user = User(email=data.email, name=data.name)
        user.outbox = [EmailOutbox(subject=f"Welcome, {data.name}!")]
        db_session.add(user)
        try:
            await db_session.commit()
        except IntegrityError as exc:
            await db_session.rollback()
            raise HTTPException(
                status_code=HTTP_409_CONFLICT, detail=f"a user with email {data.email!r} exists"
            ) from exc
        await db_session.refresh(user, attribute_names=["outbox"])
        # The rows are committed: the user exists and the email is owed, whatever happens
        # next. Enqueueing is an optimisation; the worker's sweep sends what this misses.
        for message in user.outbox:
            try:
                await state.queue.enqueue(SEND_EMAIL_TASK, **send_job(message.id))
            except (RedisError, OSError) as exc:
                log.warning(
                    "queueing outbox row %s failed (%s); the sweep will send it", message.id, exc
                )
        return _to_read(user)

    @get("/")
    async def list_users(self, db_session: NamedDependency[AsyncSession]) -> list[UserRead]:
        """The newest users (at most 100), each with the status of their emails."""
        users = await db_session.scalars(select(User).order_by(User.id.desc()).limit(LIST_LIMIT))
        return [_to_read(u) for u in users]

    @get("/{user_id:int}")
    async def get_user(
        self, user_id: FromPath[int], db_session: NamedDependency[AsyncSession]
    ) -> UserRead:
        """A user and the status of their emails."""
        user = None
        if 0 < user_id <= MAX_ID:
            user = await db_session.scalar(select(User).where(User.id == user_id))
        if user is None:
            raise NotFoundException(detail=f"no user with id {user_id}")
        return _to_read(user)


async def _check_db(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@get("/health", media_type=MediaType.JSON)
async def health(state: State, db_engine: NamedDependency[AsyncEngine]) -> Response[dict[str, Any]]:
    """200 when PostgreSQL and Redis both answer; 503 naming each that does not."""
    checks: dict[str, str] = {}
    probes = {
        "database": _check_db(db_engine),
        "redis": state.queue.redis.ping(),
    }
    results = await asyncio.gather(
        *(asyncio.wait_for(p, HEALTH_TIMEOUT_SECONDS) for p in probes.values()),
        return_exceptions=True,
    )
    for name, result in zip(probes, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("health: %s failed: %s", name, _describe(result))
            # the cause is in the log; only a debug app says it to whoever asks
            checks[name] = _describe(result) if state.debug else "unavailable"
        else:
            checks[name] = "ok"
    failed = sorted(name for name, status in checks.items() if status != "ok")
    if failed:
        return Response(
            {"status": "unavailable", "failed": failed, "checks": checks},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ok", "checks": checks})


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {HEALTH_TIMEOUT_SECONDS:g}s"
    return f"{type(exc).__name__}: {exc}".strip()
