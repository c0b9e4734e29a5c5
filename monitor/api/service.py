"""What a server process holds for its whole life: the model (loaded and warmed before the first request),
the batcher in front of it, the store, the intake of monitored comments and the key quotas."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from monitor.api.attributes import Attribute, model_attributes
from monitor.api.batcher import Batcher, Overloaded, Stopped
from monitor.api.errors import ApiError
from monitor.api.intake import Intake, Submission
from monitor.api.quota import Quotas, where
from monitor.config import Settings
from monitor.errors import CivmonError
from monitor.privacy import load_pseudonymiser
from monitor.scoring.base import Scorer
from monitor.scoring.models import load_scorer
from monitor.scoring.pending import register
from monitor.scoring.results import Result, score_texts
from monitor.store import schema
from monitor.store.db import driver_reason, transaction

log = logging.getLogger(__name__)
STORE_THREADS = 4  # writers at once: SQLite takes one at a time anyway, PostgreSQL's pool holds 5 (+10)
STORE_BACKLOG = 64  # storing requests past it are refused with a 503 rather than queued for ever
WARM_UP = "Thank you for the thoughtful reply, I see your point."


@dataclass
class Service:
    settings: Settings
    scorer: Scorer
    attributes: dict[str, Attribute]
    engine: Engine
    reader: Engine  # key lookups: on SQLite a read-only connection never waits for a writer
    batcher: Batcher
    intake: Intake
    quotas: Quotas
    auth: bool
    storing: int = 0  # storing requests running or waiting
    store_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="civmon-store")
    )

    def oversize(self, text: str) -> int | None:
        """The text's size in UTF-8 bytes when it is over [api] max_text_bytes, else None."""
        size = len(text.encode("utf-8", "surrogatepass"))
        return size if size > self.settings.api.max_text_bytes else None

    @property
    def quota_where(self) -> str:
        return where(self.settings.api.quota_storage)

    @classmethod
    def load(cls, settings: Settings, auth: bool) -> Service:
        """Everything slow happens here, before the server takes requests: the model loads (the int8 runtime is
        built once per model version and cached) and scores one text, so no caller pays for either."""
        engine = schema.open_store(settings.database.url)
        scorer = load_scorer(settings.model)
        score_texts(scorer, [WARM_UP])
        with transaction(engine) as session:
            register(session, scorer)  # stored scores cite it
        api = settings.api
        batcher = Batcher(
            partial(score_texts, scorer), api.max_batch_texts, api.batch_window_ms / 1000, api.max_queue_texts
        )
        intake = Intake(engine, settings.privacy, load_pseudonymiser(settings.privacy), scorer.version)
        attributes = model_attributes(scorer.dimensions)
        log.info("serving %s (%s)", scorer.version, ", ".join(attributes))
        return cls(
            settings,
            scorer,
            attributes,
            engine,
            schema.open_store(settings.database.url, readonly=True),
            batcher,
            intake,
            Quotas(api.quota_storage),
            auth,
        )

    async def store(self, submission: Submission) -> None:
        """Store a scored comment on threads of its own, so that a locked or slow store holds neither scoring nor
        /healthz; past STORE_BACKLOG waiting, or when the store fails, a 503 saying when to retry."""
        if self.storing >= STORE_BACKLOG:
            raise ApiError(503, "The store is busy. Retry in 5 s.", {"Retry-After": "5"})
        self.storing += 1
        try:
            await asyncio.get_running_loop().run_in_executor(self.store_pool, self.intake.store, submission)
        except (DBAPIError, PoolTimeout) as exc:
            reason = driver_reason(exc) if isinstance(exc, DBAPIError) else "no database connection came free"
            log.warning("a comment could not be stored: %s", reason)  # the driver's first line: never the text
            raise ApiError(503, "The store cannot take the comment now. Retry in 5 s.", {"Retry-After": "5"}) from None
        except CivmonError as exc:  # the store refuses (authors keyed otherwise since the start): the operator's to fix
            log.error("a comment could not be stored: %s (%s)", exc.message, exc.hint)
            refused = "The store refuses comments until its operator acts; the server's log says why."
            raise ApiError(503, refused) from None
        finally:
            self.storing -= 1

    def close(self) -> None:
        self.store_pool.shutdown(wait=True)  # a comment being stored is stored

    async def score(self, texts: list[str]) -> list[Result]:
        """The texts' results; a full queue or a stopping server is a 503 saying when to retry."""
        try:
            return await self.batcher.score(texts)
        except Overloaded as exc:
            wait = exc.retry_after_s
            raise ApiError(503, f"The server is at capacity. Retry in {wait} s.", {"Retry-After": str(wait)}) from None
        except Stopped:
            raise ApiError(503, "The server is starting or stopping. Retry shortly.", {"Retry-After": "5"}) from None
