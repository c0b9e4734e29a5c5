"""`civmon serve`: checks what would fail in every worker (configuration, store, key, address) once, up front,
then hands the app to uvicorn. With several workers, uvicorn starts each from `app_factory` in a fresh
process, which reads the same configuration through the environment."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from monitor import logs
from monitor.addresses import is_loopback, require_free_address
from monitor.api.app import create_app
from monitor.api.monitoring import prepare_multiprocess
from monitor.api.quota import Quotas
from monitor.config import CONFIG_ENV, ModelSettings, Settings, load_settings
from monitor.errors import CivmonError
from monitor.privacy import load_pseudonymiser
from monitor.scoring.models import load_scorer
from monitor.store import schema
from monitor.store.authorship import check_keying

NO_AUTH_ENV = "CIVMON_SERVE_WITHOUT_KEYS"  # for the workers uvicorn spawns: they see only the environment


def prepare(settings: Settings, config: Path | None, host: str, port: int, workers: int, auth: bool) -> None:
    """Everything that would fail in each worker, checked once with a clear message before anything is served."""
    if not auth and not is_loopback(host):
        raise CivmonError(
            f"--no-auth serves only this machine (127.0.0.1 or ::1), not {host}: anyone reaching the port would score "
            "without a key, and store comments in your communities",
            "create a key (civmon keys create NAME) and serve without --no-auth, or keep --host 127.0.0.1",
        )
    require_free_address(host, port)
    engine = schema.open_store(settings.database.url)  # initialised and current, or a clear error now
    check_keying(engine, load_pseudonymiser(settings.privacy))  # the key that stored comments' pseudonyms need
    Quotas(settings.api.quota_storage)  # memory://, or a Redis server that answers
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    os.environ[NO_AUTH_ENV] = "" if auth else "1"
    if workers > 1:
        _build_model_once(settings.model)


def _build_model_once(model: ModelSettings) -> None:
    """Build the int8 runtime (cached per model version) in a short-lived process, so the workers load it rather than
    all building it at once, and this process, which serves nothing, does not keep a model in memory."""
    child = multiprocessing.get_context("spawn").Process(target=load_scorer, args=(model,), name="civmon-prepare")
    child.start()
    child.join()
    code = child.exitcode
    child.close()  # its resources now, not in a warning at exit
    if code != 0:
        raise CivmonError(f"the model could not be loaded (exit code {code})", "the lines above say why; check [model]")


def run(host: str, port: int, workers: int) -> None:
    """Serve until stopped (Ctrl-C, SIGTERM), each worker building its app from `app_factory`."""
    with tempfile.TemporaryDirectory(prefix="civmon-metrics-") as metrics:
        if workers > 1:  # the workers' metrics meet in files there, merged by whichever answers GET /metrics
            prepare_multiprocess(Path(metrics))
        uvicorn.run(
            "monitor.api.server:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # its lines carry the query string, and with it Perspective clients' keys
            log_config=None,  # civmon's logging (monitor.logs), configured in each worker by app_factory
            proxy_headers=True,  # X-Forwarded-Proto and -For from the proxies FORWARDED_ALLOW_IPS names (loopback)
            timeout_graceful_shutdown=30,  # requests already queued are scored and answered before the exit
        )


def app_factory() -> ASGIApp:
    """The app for one uvicorn worker, from the configuration `serve` checked."""
    logs.configure()  # a spawned worker starts with no logging set up
    return create_app(load_settings(_config_path()), auth=os.environ.get(NO_AUTH_ENV) != "1")


def _config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None
