"""The monitoring package's exception family (turned into CLI messages and exit codes at the edge)."""

from __future__ import annotations

from ordernimbus.errors import OrderNimbusError


class MonitorError(OrderNimbusError):
    title = "Monitoring check refused"
