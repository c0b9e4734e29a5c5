"""Logging: one line per event with its level, as text for a terminal or JSON for a log collector."""

from __future__ import annotations

import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log on the root logger itself, so no logger name can quiet them: onnxruntime's
# quantiser writes a line per tensor (and a hint) when civmon builds a model's int8 runtime.
ROOT_CHATTER = (f"onnxruntime{os.sep}quantization{os.sep}",)


def _not_root_chatter(record: logging.LogRecord) -> bool:
    return not (record.name == "root" and any(part in record.pathname for part in ROOT_CHATTER))


def configure(json_lines: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_not_root_chatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("alembic", "apscheduler", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
