"""AWS Lambda entrypoint: API Gateway (HTTP API v2 or REST v1) events into the ASGI app.

Lambda's working directory is read-only, so embedded state defaults to /tmp unless the function's
environment says otherwise (in production ORDERNIMBUS_DATABASE_URL points at Aurora anyway).
"""

from __future__ import annotations

import os

os.environ.setdefault("ORDERNIMBUS_HOME", "/tmp/ordernimbus")  # the only writable directory

import logging

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from serving.app import app
from serving.problems import PROBLEM_JSON

# Problem documents are text: keep them readable in API Gateway logs instead of base64.
# Lambda's runtime logs the root logger to CloudWatch; the JSON access lines need INFO to get there.
logging.getLogger("ordernimbus.access").setLevel(logging.INFO)
handler = Mangum(app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON])
