"""The root of every OrderNimbus exception family.

Each package raises its own subclass (``ContractError`` in ``features``, ``RegistryError`` in
``models.registry`` ...). The CLI and the API translate these into a clear message or an RFC 7807
problem in one place each, so no layer below prints or formats errors itself.
"""

from __future__ import annotations


class OrderNimbusError(Exception):
    """Base class: a problem the user can act on, with a message that says how."""

    status: int = 400
    title: str = "Bad request"


class TenantError(OrderNimbusError):
    title = "Invalid tenant"


class NotFoundError(OrderNimbusError):
    status = 404
    title = "Not found"


class ConflictError(OrderNimbusError):
    status = 409
    title = "Conflict"
