"""Tenant ids and the one function that turns a tenant into a storage location.

Isolation rests on two rules: a tenant id is validated against a strict pattern before it touches
a path or a query, and every per-tenant path is built by :func:`tenant_dir`, which refuses
anything that would escape the tenant's own folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from ordernimbus.errors import TenantError

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` unchanged if it is a legal id, else raise a :class:`TenantError`."""
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise TenantError(
            f"invalid tenant id {tenant!r}: expected 2-63 characters of lowercase letters, digits "
            "and '-', starting with a letter or digit"
        )
    return tenant


def tenant_dir(root: Path, tenant: str, *parts: str) -> Path:
    """The directory ``root/<tenant>/<parts...>``; never anything outside ``root/<tenant>``."""
    base = (root / validate_tenant(tenant)).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise TenantError(f"path {'/'.join(parts)!r} escapes the storage of tenant {tenant!r}")
    return target


def registry_group(tenant: str) -> str:
    """SageMaker ModelPackageGroup name for a tenant (the same name on both backends)."""
    return f"ordernimbus-{validate_tenant(tenant)}"
