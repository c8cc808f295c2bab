"""Logging for ``ordernimbus serve`` (uvicorn): uvicorn's own loggers plus the API's JSON access log.

The API writes one JSON object per request on the ``ordernimbus.access`` logger (see
:mod:`serving.middleware`); this config prints those lines bare on stdout, where a log shipper
reads them, and turns uvicorn's plain-text access log off in their favour.
Pass it to uvicorn directly with ``uvicorn serving.app:app --log-config`` a JSON copy of
:data:`LOG_CONFIG` or use ``ordernimbus serve``.
"""

from __future__ import annotations

from typing import Any

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
        "json": {"format": "%(message)s"},
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "ordernimbus.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}
