"""structlog, configured once at start-up.

JSON lines on stdout when stdout is not a terminal (journald on the board keeps them as they are), a readable
console rendering in a terminal.  The level filter is structlog's ``make_filtering_bound_logger``: a filtered-out
call is a no-op method (measured by ``benchmarks/log_cost.py``).  Extra sinks (the flight recorder's event log)
receive every rendered JSON line.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL, "silent": logging.CRITICAL}  # silent: critical, written nowhere

_sinks: list[Callable[[str], None]] = []


def add_sink(sink: Callable[[str], None]) -> None:
    """Also give every JSON-rendered event line to ``sink`` (e.g. the flight recorder)."""
    _sinks.append(sink)


def remove_sink(sink: Callable[[str], None]) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def _tee_to_sinks(_logger, _name, event_dict):
    if _sinks:
        line = structlog.processors.JSONRenderer()(None, "", dict(event_dict))
        for sink in list(_sinks):
            try:
                sink(line)
            except Exception:  # noqa: BLE001 - a failing log sink never breaks logging
                pass
    return event_dict


def configure(level: str = "info", *, stream: TextIO | None = None, force_json: bool | None = None) -> None:
    if level == "silent":
        stream = open(os.devnull, "w")  # noqa: SIM115 - kept for the life of the process
    stream = stream if stream is not None else sys.stdout
    json_output = force_json if force_json is not None else not stream.isatty()
    renderer = (structlog.processors.JSONRenderer() if json_output
                else structlog.dev.ConsoleRenderer(colors=True))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if json_output else []),
            _tee_to_sinks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
