"""The metrics stage as one job: refresh rollups, raise alerts, deliver them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.config import AlertSettings
from monitor.metrics import alerts, rollups
from monitor.store.db import transaction
from monitor.store.models import Alert, ModelVersion, Score


@dataclass
class MetricsSummary:
    model_version: str | None
    rollup_rows: dict[str, int] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    delivered: int = 0


# a model version that scored anything: one index lookup per version (DISTINCT over the scores read them all)
SCORED = select(Score.comment_id).where(Score.model_version == ModelVersion.version).exists()


def current_version(session: Session) -> str | None:
    """The model version the dashboard, alerts and exports follow: of those that scored anything, the one a scorer
    last started with (a model tried and then switched back from is left as soon as scoring runs again)."""
    return session.scalar(
        select(ModelVersion.version)
        .where(SCORED)
        .order_by(func.coalesce(ModelVersion.used_utc, ModelVersion.created_utc).desc(), ModelVersion.version)
        .limit(1)
    )


def run_metrics(engine: Engine, settings: AlertSettings) -> MetricsSummary:
    with transaction(engine) as session:
        versions = list(session.scalars(select(ModelVersion.version).where(SCORED)))
        current = current_version(session)
    summary = MetricsSummary(current)
    for version in versions:  # cheap where nothing changed: only touched buckets are recomputed
        summary.rollup_rows[version] = rollups.refresh(engine, version)
    if current and settings.enabled:
        summary.alerts = alerts.evaluate(engine, current, settings)
        if settings.webhook_url is not None:
            summary.delivered = alerts.deliver(engine, settings.webhook_url.get_secret_value())
    return summary


def open_alerts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged_utc.is_(None))) or 0
