"""Settings: the TOML file and CIVMON_* environment variables, validated by pydantic.

This is the only module that reads the configuration file. Environment variables
override the file (``CIVMON_DATABASE__URL`` overrides ``[database] url``), so a
deployment can keep its database password out of the file. Secrets never live in
the TOML: Reddit credentials come from praw's own environment variables or
praw.ini, the pseudonymisation key from ``CIVMON_PSEUDONYM_KEY`` or a key file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.errors import CivmonError
from monitor.records import community_name_problem

CONFIG_ENV = "CIVMON_CONFIG"
DEFAULT_CONFIG_FILE = Path("civmon.toml")
EXAMPLE_CONFIG = "config/civmon.example.toml"

Platform = Literal["reddit", "hackernews"]
# Bounds past which a value is a typo, not a setting: the scheduler cannot hold an interval of 10^20
# minutes (OverflowError), and an infinite threshold or cooldown would switch alerts off unsaid.
YEAR_MINUTES, YEAR_HOURS = 525_600, 8_760
PositiveInt = Annotated[int, Field(ge=1, le=10**9)]
Minutes = Annotated[float, Field(gt=0, le=YEAR_MINUTES)]
Hours = Annotated[float, Field(gt=0, le=10 * YEAR_HOURS)]


DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")  # the database drivers civmon installs
QUOTA_SCHEMES = ("memory", "redis", "rediss", "redis+unix")  # where `civmon serve` can count requests


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatabaseSettings(_Section):
    url: str = "sqlite:///civmon.db"

    @field_validator("url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # their texts quote the URL, password and all (a port read from it)
            raise ValueError(
                "not a database URL, e.g. sqlite:///civmon.db or postgresql://user@host/db (an @ or : in the "
                "password or user name must be written %40 or %3A)"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite store keeps nothing from one command to the next: name a file")
        if url.drivername not in DRIVERS:  # another driver is not installed: a traceback at the first connection
            raise ValueError(
                f"civmon installs no driver {url.drivername!r}: use sqlite:/// or postgresql:// (psycopg 3)"
            )
        if "@" in (url.host or ""):  # never echo the URL: the part read as a host holds the password's end
            raise ValueError("an @ in the password or user name must be written %40")
        return value


class CommunitySettings(_Section):
    platform: Platform
    name: str = Field(min_length=1, max_length=64)
    interval_minutes: Minutes | None = None
    timezone: str = "UTC"
    listings: list[Literal["new", "comments"]] = ["new", "comments"]
    threads: list[Annotated[str, Field(pattern=r"^[0-9a-z]{1,16}$")]] = []

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from None
        return value

    @model_validator(mode="after")
    def _name_fits_platform(self) -> CommunitySettings:
        # the same rule the store holds every source to: a name the platform itself would allow
        if problem := community_name_problem(self.platform, self.name):
            raise ValueError(f"{self.name!r} cannot name a community: {problem}")
        return self

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.name}"


class CollectorSettings(_Section):
    interval_minutes: Minutes = 15
    submissions_per_run: Annotated[int, Field(ge=1, le=1000)] = 100
    comments_per_run: Annotated[int, Field(ge=1, le=10_000)] = 1000
    active_window_hours: Annotated[float, Field(gt=0)] = 48.0  # any finite span: 1e6 keeps every thread active
    threads_per_run: Annotated[int, Field(ge=0, le=10_000)] = 25
    more_comments_budget: Annotated[int, Field(ge=0, le=100_000)] = 32
    request_budget: PositiveInt = 600
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    retry_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0
    request_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 16.0


class ScheduleSettings(_Section):
    score_minutes: Minutes = 5
    metrics_minutes: Minutes = 10
    retention_hours: Hours = 24


class ScoringSettings(_Section):
    """How the store is scored: one scorer (SQLite or PostgreSQL), or many workers (PostgreSQL only)."""

    workers: Annotated[int, Field(ge=1, le=1024)] = 1  # `civmon run` supervises this many `score --worker`s
    threads: Annotated[int, Field(ge=0, le=1024)] = 0  # CPU threads per worker; 0: this machine's cores / workers
    # comments a worker claims and scores at once; a claim is one INSERT of 6 parameters a comment, within
    # the 65,535 a PostgreSQL statement may carry
    claim_batch: Annotated[int, Field(ge=1, le=10_000)] = 256
    # a dead worker's claims are taken over this long after its last renewal (a live one renews every third)
    lease_seconds: Annotated[int, Field(ge=3, le=86_400)] = 300
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0  # an idle worker looks for new comments this often


class RedditSettings(_Section):
    site: str = "DEFAULT"
    # Reddit asks every client to name itself; a blank one is refused by the HTTP library at the first request
    user_agent: Annotated[str, Field(min_length=1, pattern=r"^\S(.*\S)?$")] = (
        "civmon/0.1 (self-hosted civility monitor)"
    )
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"


class HackerNewsSettings(_Section):
    api_url: str = "https://hacker-news.firebaseio.com/v0"


class ModelSettings(_Section):
    name: str = "alliance-minilm"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    runtime: Literal["auto", "torch", "onnx-int8"] = "auto"
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    fallback_to_default: bool = True
    # For a Hugging Face model: its labels -> civmon dimensions, how its outputs combine, thresholds.
    labels: dict[str, str] = {}
    activation: Literal["sigmoid", "softmax"] = "sigmoid"
    thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}


class PrivacySettings(_Section):
    pseudonymise_authors: bool = True
    key_file: Path = Path("civmon.key")
    keep_bodies: bool = True
    keep_deleted_content: bool = False
    retention_days: Annotated[int, Field(ge=1, le=36_500)] | None = None


class AlertSettings(_Section):
    enabled: bool = True
    min_comments: PositiveInt = 30
    threshold_mads: Annotated[float, Field(gt=0, le=1000)] = 3.0
    cooldown_hours: Annotated[float, Field(ge=0, le=YEAR_HOURS)] = 6.0
    baseline_days: Annotated[int, Field(ge=7, le=3650)] = 28
    # A secret (Slack/Discord webhook URLs are): set CIVMON_ALERTS__WEBHOOK_URL rather than the file.
    webhook_url: SecretStr | None = None

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the URL: its path is the secret.
        if value is not None and (problem := _http_url_problem(value.get_secret_value())):
            raise ValueError(f"{problem}; give an http(s) URL such as https://hooks.slack.com/services/...")
        return value


def _http_url_problem(url: str) -> str | None:
    """What keeps `url` from being an http(s) URL a client can send to (never quoting it: it may be a secret)."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "it holds spaces or control characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL with a host"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        return "its port is not a number from 0 to 65535"
    labels = parts.hostname.removesuffix(".").split(".")  # what DNS (and urllib3, when sending) allows
    if len(parts.hostname) > 253 or not all(0 < len(label) <= 63 for label in labels):
        return "its host is not a valid name (labels of 1 to 63 characters)"
    return None


class ApiSettings(_Section):
    """`civmon serve`: limits per request and the micro-batching that serves concurrent requests."""

    max_text_bytes: Annotated[int, Field(ge=1, le=1_000_000)] = 20_480  # Perspective's limit on comment.text
    max_request_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 1 << 20  # a larger body is refused unread
    max_texts_per_request: Annotated[int, Field(ge=1, le=100_000)] = 256  # /v1/score; each costs the key a text
    batch_window_ms: Annotated[float, Field(ge=0, le=1000)] = 2.0  # an idle model waits this long for company
    max_batch_texts: Annotated[int, Field(ge=1, le=100_000)] = 256  # texts per model call
    max_queue_texts: Annotated[int, Field(ge=1, le=10_000_000)] = 1024  # a few seconds of work; then 503, Retry-After
    default_qps: Annotated[float, Field(gt=0, le=1e6)] = 10.0  # `civmon keys create` without --qps
    # where per-key request counts live: memory:// per server process, redis://host:6379 shared by all
    quota_storage: str = "memory://"
    # the URL clients reach the server by, for the discovery document (default: as each request reached it)
    public_url: str | None = None

    @field_validator("quota_storage")
    @classmethod
    def _quota_storage(cls, value: str) -> str:
        # never quoted: a Redis URL may hold its password
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise ValueError("not a storage URL with a port from 0 to 65535") from None
        if parts.scheme not in QUOTA_SCHEMES:
            raise ValueError("use memory:// (one server process) or redis://HOST:PORT (shared by several)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and (problem := _http_url_problem(value)):
            raise ValueError(f"{problem}; give the server's http(s) URL, e.g. https://civmon.example.org/")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVMON_", env_nested_delimiter="__", extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    communities: list[CommunitySettings] = []
    collector: CollectorSettings = CollectorSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    scoring: ScoringSettings = ScoringSettings()
    reddit: RedditSettings = RedditSettings()
    hackernews: HackerNewsSettings = HackerNewsSettings()
    model: ModelSettings = ModelSettings()
    privacy: PrivacySettings = PrivacySettings()
    alerts: AlertSettings = AlertSettings()
    api: ApiSettings = ApiSettings()

    @model_validator(mode="after")
    def _unique_communities(self) -> Settings:
        # the store matches names regardless of case, as Reddit does: AskHistorians and askhistorians are one
        keys = [c.key.lower() for c in self.communities]
        duplicates = sorted({c.key for c in self.communities if keys.count(c.key.lower()) > 1})
        if duplicates:
            raise ValueError(f"communities listed twice (names match regardless of case): {', '.join(duplicates)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment wins over them.
        return env_settings, init_settings


def require_shared_database(settings: Settings, asked: str) -> None:
    """Scoring workers share one store through row locks SQLite does not have: refuse them there."""
    if make_url(settings.database.url).get_backend_name() != "sqlite":
        return
    raise CivmonError(
        f"{asked} needs PostgreSQL: on SQLite one process scores the store "
        "(`civmon score`, or `civmon run` with [scoring] workers = 1)",
        'move the store to PostgreSQL: set [database] url = "postgresql+psycopg://USER@HOST/DATABASE" '
        "(or CIVMON_DATABASE__URL), run `civmon init`, then collect or `civmon import` the comments there",
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, located by its field path."""

    path: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}\n  → {self.hint}"


class ConfigError(CivmonError):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join("  " + str(p).replace("\n", "\n    ") for p in problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the configuration; nothing was started.\n{lines}",
            f"fix what each problem names, in the file or a CIVMON_ variable (every setting is explained in "
            f"{EXAMPLE_CONFIG}), and run `civmon config check`",
        )


def resolve_path(path: Path | None) -> Path | None:
    """The file to read: the explicit one, else $CIVMON_CONFIG, else ./civmon.toml if present."""
    if path is not None:
        return path
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the configuration; raise ConfigError listing every problem."""
    path = resolve_path(path)
    data = _read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "built-in defaults"
    if slips := _misspelt_variables():
        raise ConfigError(source, slips)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem(err) for err in exc.errors()]) from None
    except SettingsError as exc:  # a CIVMON_<SECTION> variable that is not the JSON its section needs
        raise ConfigError(source, [_environment_problem(exc)]) from None


def _environment_problem(error: SettingsError) -> Problem:
    match = re.search(r'field "(\w+)"', str(error))
    field = match.group(1) if match else "?"
    variable = f"CIVMON_{field.upper()}"
    hint = f"give it as JSON, e.g. {variable}='{_JSON_EXAMPLES.get(field, '{...}')}'"
    if field != "communities":
        hint += f", or unset it and set one value at a time ({variable}__KEY=value)"
    return Problem(variable, "not valid JSON", hint)


_JSON_EXAMPLES = {
    "communities": '[{"platform": "reddit", "name": "AskHistorians"}]',
    "database": '{"url": "sqlite:///civmon.db"}',
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise CivmonError(
            f"configuration file {path} does not exist",
            f"copy {EXAMPLE_CONFIG} to {path} and edit it, or pass --config with another file",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            str(path), [Problem("(file)", f"not valid TOML: {exc}", "fix the syntax at that line")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [Problem("(file)", f"not UTF-8 text: {exc}", "save the file as UTF-8")]) from None
    except OSError as exc:  # a folder, an unreadable file
        raise CivmonError(
            f"cannot read the configuration file {path}: {exc.strerror}",
            "pass --config with a readable TOML file (config/civmon.example.toml shows one)",
        ) from None


_HINTS = {
    "extra_forbidden": "unknown setting: check its spelling and section against the example file",
    "missing": "add this setting",
    "literal_error": "use one of the allowed values",
    "bool_type": "write true or false (without quotes)",
    "bool_parsing": "write true or false (without quotes)",
    "int_type": "write a whole number (without quotes)",
    "int_parsing": "write a whole number (without quotes)",
    "float_type": "write a number (without quotes)",
    "float_parsing": "write a number (without quotes)",
    "string_type": "write the value in quotes",
    "list_type": "write a list, e.g. [[communities]] tables",
}


def _problem(error: Any) -> Problem:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    hint = _HINTS.get(error["type"], "correct this value")
    named = [str(part) for part in error["loc"][:2]]
    if len(named) == 2 and (variable := _variable(*named)) in os.environ:  # the environment wins over the file
        return Problem(path, f"{message} (set by {variable}, which the file gives way to)", f"{hint} in {variable}")
    return Problem(path or "(top level)", message, hint)


def _variable(section: str, key: str) -> str:
    return f"CIVMON_{section.upper()}__{key.upper()}"


def _misspelt_variables() -> list[Problem]:
    """CIVMON_DATABASE_URL for CIVMON_DATABASE__URL: ignored, it would leave the store at its default unsaid."""
    sections = {name: field.annotation for name, field in Settings.model_fields.items()}
    wanted = {
        f"CIVMON_{section}_{key}".upper(): _variable(section, key)
        for section, annotation in sections.items()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel)
        for key in annotation.model_fields
    }
    return [
        Problem(name, "not a setting: a section and its key are joined by two underscores", f"rename it {wanted[name]}")
        for name in sorted(os.environ)
        if name.upper() in wanted
    ]
