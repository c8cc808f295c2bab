"""SHAP top drivers of a SKU's forecast, read from the serving model version's artifact.

The build pipeline saves ``explain.json`` in the model directory (packed into ``model.tar.gz``):
``{"global": [{"feature", "importance"}...], "per_sku": {"<store_id>|<sku>": [...]}}``. The API
reads it from the version the forecasts come from (the latest approved, or ``version``), so the
drivers shown always belong to the model that made the numbers beside them.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Query

from models.registry.base import ModelVersion
from ordernimbus.errors import NotFoundError, OrderNimbusError
from serving import artifacts
from serving.deps import CurrentPrincipal, Registry
from serving.params import ID_QUERY
from serving.schemas_ops import DriverPublic, ExplanationPublic

router = APIRouter(prefix="/explanations", tags=["explanations"])
EXPLAIN_FILE = "explain.json"


class ExplanationNotFoundError(NotFoundError):
    title = "Explanation not found"


@router.get("", response_model=ExplanationPublic)
def explain(
    *,
    caller: CurrentPrincipal,
    registry: Registry,
    store_id: Annotated[str | None, ID_QUERY] = None,
    sku: Annotated[str | None, ID_QUERY] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="default: serving")] = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ExplanationPublic:
    """The top drivers of one series (``store_id`` + ``sku``) or of the whole model."""
    if (store_id is None) != (sku is None):
        raise OrderNimbusError("give both store_id and sku for a series, or neither for the model's drivers")
    model = _version(registry, caller.tenant_id, version)
    raw = artifacts.read_member(model.artifact_uri, EXPLAIN_FILE)
    if raw is None:
        raise ExplanationNotFoundError(
            f"model version {model.version} has no SHAP explanations ({EXPLAIN_FILE} is not in its artifact)"
        )
    doc = _parse(raw)
    global_drivers = _drivers(doc["global"], top)
    own = doc["per_sku"].get(f"{store_id}|{sku}") if store_id is not None else None
    return ExplanationPublic(
        model_version=model.version,
        store_id=store_id,
        sku=sku,
        drivers=_drivers(own, top) if own is not None else global_drivers,
        scope="series" if own is not None else "global",
        global_drivers=global_drivers,
    )


def _version(registry: Registry, tenant: str, version: int | None) -> ModelVersion:
    if version is not None:
        return registry.get(tenant, version)
    serving = registry.serving_version(tenant)
    if serving is None:
        raise ExplanationNotFoundError("this tenant has no approved model version yet, so nothing to explain")
    return serving


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        glob, per_sku = doc["global"], doc.get("per_sku", {})
        if not isinstance(glob, list) or not isinstance(per_sku, dict):
            raise TypeError("'global' must be a list and 'per_sku' an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise artifacts.ArtifactError(f"{EXPLAIN_FILE} in the model artifact is malformed ({exc})") from None
    return {"global": glob, "per_sku": per_sku}


def _importance(item: dict[str, Any]) -> Any:
    """``importance`` (the explain.json contract); ``mean_abs_shap`` as the model card reads it."""
    return item["importance"] if "importance" in item else item["mean_abs_shap"]


def _label(item: dict[str, Any]) -> str | None:
    label = item.get("label")
    return str(label) if label is not None else None


def _drivers(items: Any, top: int) -> list[DriverPublic]:
    try:
        drivers = [
            DriverPublic(feature=str(i["feature"]), label=_label(i), importance=float(_importance(i)))
            for i in items
        ]
        if not all(math.isfinite(d.importance) for d in drivers):
            raise ValueError("importances must be finite numbers")
    except (ValueError, KeyError, TypeError) as exc:
        raise artifacts.ArtifactError(
            f"{EXPLAIN_FILE} in the model artifact is malformed: expected "
            f'[{{"feature", "importance"}}] ({exc})'
        ) from None
    drivers.sort(key=lambda d: -abs(d.importance))
    return drivers[:top]
