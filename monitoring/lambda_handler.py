"""The monitor Lambda: EventBridge's daily drift-check rule runs the check of every tenant it names.

Handler ``monitoring.lambda_handler.handler`` (infra/stacks/events.py). Event::

    {"environment": "prod", "tenants": ["acme", "globex"]}     # the scheduled rule's input
    {"tenant": "acme", "retrain": true}                        # one tenant, e.g. a manual request

Configuration comes from the function's environment, read here and nowhere below: the
``ORDERNIMBUS_*`` settings (store URL, SageMaker registry, region), plus
``ORDERNIMBUS_BUILD_PIPELINE_NAME`` (the build pipeline a retraining starts),
``ORDERNIMBUS_LAKE_URI`` (``s3://<lake bucket>/<prefix>``, one ``<tenant>/sales.parquet`` each) and
``ORDERNIMBUS_METRIC_NAMESPACE``. Each check publishes ``DriftDetected`` (1 when a drift rule fired,
else 0; dimensions Environment and TenantId), which the observability stack alarms on. No files:
the function's disk is gone after the call, so the decision row holds the whole summary.

One tenant's failure does not stop the others; the handler raises at the end, so the function's
Errors alarm sees it and EventBridge's retry runs the checks again (a repeated check is harmless:
accuracy is appended under a new check id and retraining is debounced).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
DRIFT_METRIC = "DriftDetected"
DRIFT_RULES = ("drift_share", "psi")


class MonitorRunError(RuntimeError):
    """Some tenants' checks failed; their messages are in the function's log and in ``failures``."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{tenant}: {message}" for tenant, message in failures.items()))


def handler(
    event: Mapping[str, Any], context: Any = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check every tenant of the event; returns one line per tenant (what was decided and why)."""
    env = os.environ if environ is None else environ
    tenants = _tenants(event)
    environment = str(event.get("environment") or env.get("ORDERNIMBUS_ENVIRONMENT", ""))
    results, failures = [], {}
    for tenant in tenants:
        try:
            results.append(_check(tenant, bool(event.get("retrain", False)), environment, env))
        except Exception as exc:  # one tenant must not hide the others; re-raised below
            log.exception("monitoring check of tenant %s failed", tenant)
            failures[tenant] = f"{type(exc).__name__}: {exc}"
    if failures:
        raise MonitorRunError(failures)
    return {"environment": environment, "checks": results}


def _tenants(event: Mapping[str, Any]) -> list[str]:
    from ordernimbus.tenancy import validate_tenant

    named = event.get("tenants") if "tenants" in event else [event.get("tenant")]
    if not isinstance(named, list) or not named:
        raise ValueError('the event must name "tenants": [..] or "tenant": ".."')
    return [validate_tenant(str(t)) for t in named]


def _check(tenant: str, retrain: bool, environment: str, env: Mapping[str, str]) -> dict[str, Any]:
    from monitoring.check import run_check
    from monitoring.lake import open_lake
    from monitoring.trigger import open_trigger
    from ordernimbus.settings import get_settings

    settings = get_settings()
    lake_uri = env.get("ORDERNIMBUS_LAKE_URI")
    outcome = run_check(
        settings,
        tenant,
        requested=retrain,
        origin="manual" if retrain else "schedule",
        lake=open_lake(settings.lake_dir, lake_uri, settings.aws_region),
        trigger=open_trigger(
            settings, pipeline_name=env.get("ORDERNIMBUS_BUILD_PIPELINE_NAME"), lake_root_uri=lake_uri
        ),
        reports=False,
    )
    decision = outcome.decision
    drifted = any(r["fired"] for r in decision.reasons if r["rule"] in DRIFT_RULES)
    namespace = env.get("ORDERNIMBUS_METRIC_NAMESPACE")
    if namespace:
        _publish(namespace, environment, tenant, drifted, settings.aws_region)
    return {
        "tenant": tenant,
        "check_id": decision.check_id,
        "retrain": decision.retrain,
        "action": decision.action,
        "run_id": decision.run_id,
        "drift_detected": drifted,
        "fired": [r["rule"] for r in decision.reasons if r["fired"]],
    }


def _publish(namespace: str, environment: str, tenant: str, drifted: bool, region: str) -> None:
    import boto3

    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": DRIFT_METRIC,
                "Dimensions": [
                    {"Name": "Environment", "Value": environment},
                    {"Name": "TenantId", "Value": tenant},
                ],
                "Value": 1.0 if drifted else 0.0,
                "Unit": "Count",
            }
        ],
    )
