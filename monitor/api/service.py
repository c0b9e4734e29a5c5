"""What a server process holds for its whole life: the model (loaded and warmed before the first request),
the batcher in front of it, the store, the intake of monitored comments and the key quotas."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from monitor.api.attributes import Attribute, model_attributes
from monitor.api.batcher import Batcher, Overloaded, Stopped
from monitor.api.errors import ApiError
from monitor.api.intake import Intake
from monitor.api.quota import Quotas
from monitor.config import Settings
from monitor.privacy import load_pseudonymiser
from monitor.scoring.base import Scorer
from monitor.scoring.models import load_scorer
from monitor.scoring.pending import register
from monitor.scoring.results import Result, score_texts
from monitor.store import schema
from monitor.store.db import transaction

log = logging.getLogger(__name__)
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
        log.info("serving %s (%s)", scorer.version, ", ".join(model_attributes(scorer.dimensions)))
        return cls(
            settings,
            scorer,
            model_attributes(scorer.dimensions),
            engine,
            schema.open_store(settings.database.url, readonly=True),
            batcher,
            intake,
            Quotas(api.quota_storage),
            auth,
        )

    async def score(self, texts: list[str]) -> list[Result]:
        """The texts' results; a full queue or a stopping server is a 503 saying when to retry."""
        try:
            return await self.batcher.score(texts)
        except Overloaded as exc:
            wait = exc.retry_after_s
            raise ApiError(503, f"The server is at capacity. Retry in {wait} s.", {"Retry-After": str(wait)}) from None
        except Stopped:
            raise ApiError(503, "The server is starting or stopping. Retry shortly.", {"Retry-After": "5"}) from None
