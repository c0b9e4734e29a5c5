"""The monitor's tables (SQLAlchemy 2 typed ORM).

Times are integer seconds since the epoch, UTC (as Reddit and Hacker News give them):
SQLite and PostgreSQL then bucket them by hour, day or week with the same integer
arithmetic, which keeps rollups in SQL portable. Platform ids are the platform's
own (Reddit base-36 ids without the ``t1_`` prefix, Hacker News item numbers).
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.records import ItemState

# Named constraints, so later migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _str_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    # Plain strings with a CHECK, not a PostgreSQL enum type, so adding a value is a small migration.
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Community(Base):
    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("platform", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    created_utc: Mapped[int] = mapped_column(BigInteger)

    @hybrid_property
    def key(self) -> str:
        """platform/name, as configs and exports name a community; in queries too (SQL concatenation)."""
        return self.platform + "/" + self.name


class Thread(Base):
    """A submission (Reddit) or story (Hacker News)."""

    __tablename__ = "threads"
    __table_args__ = (UniqueConstraint("community_id", "platform_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    platform_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    permalink: Mapped[str | None] = mapped_column(Text)
    platform_score: Mapped[int | None] = mapped_column(Integer)
    num_comments: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[ItemState] = mapped_column(_str_enum(ItemState, "item_state"), default=ItemState.LIVE)
    created_utc: Mapped[int | None] = mapped_column(BigInteger)  # unknown while only a comment named the thread
    first_seen_utc: Mapped[int] = mapped_column(BigInteger)
    last_seen_utc: Mapped[int] = mapped_column(BigInteger)
    # When a collector last read the thread's whole comment tree: the least recently read go first.
    tree_refreshed_utc: Mapped[int | None] = mapped_column(BigInteger)


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("community_id", "platform_id"),
        Index("ix_comments_community_created", "community_id", "created_utc"),
        Index("ix_comments_thread", "thread_id"),
        Index("ix_comments_first_seen", "first_seen_utc"),  # which rollup buckets new comments touch
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"))
    platform_id: Mapped[str] = mapped_column(String(32))
    # The parent's platform id, which may be the thread's or a comment not (yet) collected: no foreign key.
    parent_platform_id: Mapped[str | None] = mapped_column(String(32))
    depth: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str | None] = mapped_column(String(64))  # pseudonym unless privacy opts out
    body: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(32))  # detects edits even after bodies are purged
    state: Mapped[ItemState] = mapped_column(_str_enum(ItemState, "item_state"), default=ItemState.LIVE)
    platform_score: Mapped[int | None] = mapped_column(Integer)
    permalink: Mapped[str | None] = mapped_column(Text)
    created_utc: Mapped[int] = mapped_column(BigInteger)
    edited_utc: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_utc: Mapped[int] = mapped_column(BigInteger)
    last_seen_utc: Mapped[int] = mapped_column(BigInteger)


class ModelVersion(Base):
    """A scoring model as it was when it scored: encoder + heads fingerprint, or hub id + revision."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    details: Mapped[str | None] = mapped_column(Text)  # JSON: thresholds, dimensions, provenance
    created_utc: Mapped[int] = mapped_column(BigInteger)
    used_utc: Mapped[int | None] = mapped_column(BigInteger)  # a scorer last started with it: what the store follows


SKIP_REASON_LENGTH = 200


class Score(Base):
    """One comment scored by one model version; a dimension the model lacks stays NULL."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("comment_id", "model_version"),
        Index("ix_scores_stale", "model_version", "stale"),
        Index("ix_scores_scored", "model_version", "scored_utc"),  # which rollup buckets new scores touch
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    hostility: Mapped[float | None] = mapped_column(Float)
    respect: Mapped[float | None] = mapped_column(Float)
    warmth: Mapped[float | None] = mapped_column(Float)
    insult: Mapped[float | None] = mapped_column(Float)
    threat: Mapped[float | None] = mapped_column(Float)
    identity_attack: Mapped[float | None] = mapped_column(Float)
    profanity: Mapped[float | None] = mapped_column(Float)
    alliance: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    # Why the scores are NULL (empty, [removed], not English, ...); NULL when the comment was scored.
    skip_reason: Mapped[str | None] = mapped_column(String(SKIP_REASON_LENGTH))
    # Set when the comment's text changed after it was scored: the scorer rescores it.
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    scored_utc: Mapped[int] = mapped_column(BigInteger)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # finished, but some requests or items failed
    FAILED = "failed"


class CollectionRun(Base):
    """One execution of a job (collection, scoring, rollup...) for the run log and `civmon status`."""

    __tablename__ = "collection_runs"
    __table_args__ = (Index("ix_runs_community_started", "community_id", "started_utc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    started_utc: Mapped[int] = mapped_column(BigInteger)
    finished_utc: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[RunStatus] = mapped_column(_str_enum(RunStatus, "run_status"))
    items_new: Mapped[int] = mapped_column(Integer, default=0)
    items_updated: Mapped[int] = mapped_column(Integer, default=0)
    items_deleted: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Checkpoint(Base):
    """Where a collector stream of a community got to; committed with the data it covers."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("community_id", "stream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    stream: Mapped[str] = mapped_column(String(64))
    position: Mapped[str] = mapped_column(Text)
    updated_utc: Mapped[int] = mapped_column(BigInteger)


class Rollup(Base):
    """Per community, model version, bucket (hour/day/week, UTC) and bucket start: counts and sums
    from which means, shares, intervals and the shape of the distribution follow exactly, for one
    bucket or any run of buckets (sums add up)."""

    __tablename__ = "rollups"
    __table_args__ = (
        UniqueConstraint("community_id", "model_version", "bucket", "start_utc"),
        Index("ix_rollups_lookup", "model_version", "bucket", "community_id", "start_utc"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    bucket: Mapped[str] = mapped_column(String(8))
    start_utc: Mapped[int] = mapped_column(BigInteger)
    comments: Mapped[int] = mapped_column(Integer)
    scored: Mapped[int] = mapped_column(Integer)  # comments with a hostility score
    hostile: Mapped[int] = mapped_column(Integer)  # hostility at or above the model's threshold
    hostility_sum: Mapped[float] = mapped_column(Float)
    hostility_sum2: Mapped[float] = mapped_column(Float)
    hostility_sum3: Mapped[float] = mapped_column(Float)
    hostility_sum4: Mapped[float] = mapped_column(Float)
    respect_n: Mapped[int] = mapped_column(Integer)
    respect_sum: Mapped[float] = mapped_column(Float)
    respect_sum2: Mapped[float] = mapped_column(Float)
    warmth_n: Mapped[int] = mapped_column(Integer)
    warmth_sum: Mapped[float] = mapped_column(Float)
    warmth_sum2: Mapped[float] = mapped_column(Float)
    alliance_n: Mapped[int] = mapped_column(Integer)
    alliance_sum: Mapped[float] = mapped_column(Float)
    alliance_sum2: Mapped[float] = mapped_column(Float)


class RollupState(Base):
    """How far the rollups of a model version are up to date: scores and comments newer than the
    watermark mark their buckets for recomputation."""

    __tablename__ = "rollup_state"

    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"), primary_key=True)
    watermark_utc: Mapped[int] = mapped_column(BigInteger)
    alerts_utc: Mapped[int | None] = mapped_column(BigInteger)  # the watermark the alerts last checked up to


class Alert(Base):
    """One incident: a community (or a thread) turning hostile beyond its baseline."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("community_id", "kind", "subject", "bucket", "start_utc"),
        Index("ix_alerts_open", "acknowledged_utc", "created_utc"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    kind: Mapped[str] = mapped_column(String(32))  # "hostility", "hostile_share", "thread"
    subject: Mapped[str] = mapped_column(String(64))  # "" for the community, else the thread's platform id
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    bucket: Mapped[str | None] = mapped_column(String(8))  # "hour" or "day" (a thread's: "hour"); None: not recorded
    start_utc: Mapped[int] = mapped_column(BigInteger)  # the bucket (or thread hour) that fired
    value: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    scored: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_utc: Mapped[int] = mapped_column(BigInteger)
    delivered_utc: Mapped[int | None] = mapped_column(BigInteger)  # webhook accepted it
    acknowledged_utc: Mapped[int | None] = mapped_column(BigInteger)


class Lease(Base):
    """Who holds a singleton role (the scheduler) on this database, kept alive by heartbeats."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))  # host, process id and start time, for the refusal message
    acquired_utc: Mapped[int] = mapped_column(BigInteger)
    heartbeat_utc: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """A key to `civmon serve`. Only the SHA-256 of its secret is kept: the secret is shown once, at creation.
    A revoked key keeps its row (and its name) for the audit trail."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("key_hash"))  # the hash's index finds a key

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))  # hex
    qps: Mapped[float] = mapped_column(Float)  # requests per second allowed
    created_utc: Mapped[int] = mapped_column(BigInteger)
    revoked_utc: Mapped[int | None] = mapped_column(BigInteger)
    # JSON list of the communityIds its comments may be stored under ("*": any); empty: it only scores
    communities: Mapped[str] = mapped_column(Text, default="[]")


class ScoreClaim(Base):
    """A comment a scoring worker (`civmon score --worker`) is scoring for one model version. Deleted with
    the scores it led to, in one transaction; a claim whose lease expired (its worker died) is taken over."""

    __tablename__ = "score_claims"
    __table_args__ = (Index("ix_score_claims_expires", "model_version", "expires_utc"),)

    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))  # host, process id and start time of the worker
    claimed_utc: Mapped[int] = mapped_column(BigInteger)  # both on the database's clock, which all workers share
    expires_utc: Mapped[int] = mapped_column(BigInteger)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)  # how often a dead worker's lease was taken over


class StoreFact(Base):
    """A fact about the whole store that every writer must agree with, such as how its authors are keyed."""

    __tablename__ = "store_facts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
