"""Data in and out: sales uploads, the Shopify order webhook, and a series' sales history.

``POST /uploads`` runs exactly what ``ordernimbus ingest`` runs (:func:`features.ingest.ingest_file`:
contract, quality report, atomic idempotent upsert) on the uploaded file, for the credential's
tenant. Ingestion needs pandas, so it is imported inside the handler: the slim Lambda package
answers 501 and uploads go to the full package (the embedded API, or a container deployment).

``POST /uploads/shopify`` takes Shopify's ``orders/*`` webhooks. It carries no API key: the shop's
signing secret is the credential. The shop domain header picks the configured shop, the HMAC of
the raw body must verify under that shop's secret, and the tenant is the one configured for it;
nothing in the payload can choose a tenant.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Query, Request, UploadFile

from features.sources.shopify_hmac import verify_shopify_hmac
from ordernimbus.errors import OrderNimbusError
from ordernimbus.settings import ShopifyWebhook
from serving import reads
from serving.auth import Principal
from serving.deps import CurrentPrincipal, ServicesDep, require_role
from serving.params import ID_QUERY, IsoDate
from serving.routers.registry import FullPackageRequiredError
from serving.schemas import SalesHistoryPublic, SalesPointPublic
from serving.schemas_ops import ShopifyWebhookPublic, UploadPublic

router = APIRouter(tags=["data"])
Uploader = Annotated[Principal, Depends(require_role("admin", "analyst"))]
# What `ordernimbus ingest` reads (features.sources.load.open_tabular): delimited text, gzipped or not,
# Excel, Parquet and Shopify JSON. The API refused .tsv, .txt, .xlsm and .gz that the CLI reads.
SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xlsm", ".parquet", ".json")
SHOPIFY_TOPICS = frozenset(
    {"orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled"}
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


class UnsupportedUploadError(OrderNimbusError):
    status = 415
    title = "Unsupported file type"


@router.post(
    "/uploads", response_model=UploadPublic, status_code=201, responses={422: {"description": "rejected"}}
)
def upload_sales(
    caller: Uploader,
    svc: ServicesDep,
    file: Annotated[UploadFile, File(description="CSV/TSV/TXT (or .gz), XLSX/XLSM, Parquet, Shopify JSON")],
    mapping: Annotated[
        str | None,
        Form(max_length=20_000, description='JSON: canonical field -> your column, e.g. {"sku": "Item"}'),
    ] = None,
    lenient: Annotated[bool, Form(description="quarantine bad rows instead of rejecting the upload")] = False,
) -> UploadPublic:
    """Validate the file and merge it into the tenant's sales (atomic; a repeat changes nothing)."""
    name = _safe_name(file.filename)
    columns = _mapping(mapping)
    try:
        from features.ingest import ingest_file
        from features.lake import SalesLake
    except ImportError as exc:
        raise FullPackageRequiredError(
            f"uploads need the full package ({exc.name} is missing here): post them to the embedded API"
        ) from None
    settings = svc.settings
    spool = settings.home / "uploads-tmp"
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool) as tmp:
        path = FilePath(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1024 * 1024)
        result = ingest_file(
            path, caller.tenant_id, SalesLake(settings.lake_dir), settings.reports_dir, mapping=columns,
            lenient=lenient, max_bytes=settings.api_max_body_bytes,
        )  # fmt: skip
    u = result.upsert
    return UploadPublic(
        filename=name, rows_in=u.rows_in, rows_new=u.rows_new, rows_updated=u.rows_updated,
        rows_unchanged=u.rows_unchanged, rows_total=u.rows_total, frequency=u.frequency,
        source_rows=result.source_rows, quarantined=result.quarantine is not None,
        report=json.loads(result.report_json.read_text()),
    )  # fmt: skip


@router.post(
    "/uploads/shopify",
    response_model=ShopifyWebhookPublic,
    responses={401: {"description": "unknown shop or bad signature"}, 422: {"description": "rejected"}},
)
async def shopify_webhook(  # noqa: PLR0917 - Shopify's four headers
    request: Request,
    svc: ServicesDep,
    x_shopify_hmac_sha256: Annotated[str | None, Header(max_length=200)] = None,
    x_shopify_shop_domain: Annotated[str | None, Header(max_length=255)] = None,
    x_shopify_topic: Annotated[str | None, Header(max_length=100)] = None,
    x_shopify_webhook_id: Annotated[str | None, Header(max_length=100)] = None,
) -> ShopifyWebhookPublic:
    """A Shopify ``orders/*`` webhook, verified with the shop's secret, into the shop's tenant."""
    body = await request.body()
    shop = _shop(svc.settings.shopify_webhooks, x_shopify_shop_domain)
    if shop is None or not verify_shopify_hmac(
        body, shop.secret.get_secret_value(), x_shopify_hmac_sha256 or ""
    ):
        raise HTTPException(401, "unknown shop or invalid X-Shopify-Hmac-Sha256 signature")
    request.state.tenant_id = shop.tenant
    request.state.caller = f"shopify:{shop.shop}"
    limit = svc.settings.api_rate_limit_per_tenant_per_minute
    wait = svc.tenant_limiter.acquire(f"tenant:{shop.tenant}")
    if wait > 0:
        raise HTTPException(429, f"rate limit of {limit} requests per minute (this tenant's) exceeded",
                            headers={"Retry-After": str(max(1, round(wait + 0.5)))})  # fmt: skip
    if x_shopify_topic not in SHOPIFY_TOPICS:
        raise OrderNimbusError(
            f"webhook topic {x_shopify_topic!r} is not handled: subscribe {', '.join(sorted(SHOPIFY_TOPICS))}"
        )
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise OrderNimbusError("the webhook body is not JSON") from None
    try:
        from features.sources.shopify_orders import apply_order_webhook
    except ImportError as exc:
        raise FullPackageRequiredError(
            f"webhooks need the full package ({exc.name} is missing here)"
        ) from None
    source = f"shopify webhook {x_shopify_webhook_id or ''}".strip()
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(apply_order_webhook, svc.settings, shop.tenant, payload, source)
    return ShopifyWebhookPublic(
        order_events=result.order_events, days_updated=result.days_updated, rows_total=result.rows_total
    )


@router.get("/sales", response_model=SalesHistoryPublic)
def sales_history(
    *,
    caller: CurrentPrincipal,
    svc: ServicesDep,
    store_id: Annotated[str, ID_QUERY],
    sku: Annotated[str, ID_QUERY],
    start: Annotated[IsoDate | None, Query(description="first date, inclusive")] = None,
    end: Annotated[IsoDate | None, Query(description="last date, inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_HISTORY_DAYS, description="newest days kept")] = 365,
) -> SalesHistoryPublic:
    """One series' recent actuals (units and price per day), oldest first."""
    if start is not None and end is not None and start > end:
        raise OrderNimbusError(f"start ({start}) must not be after end ({end})")
    rows = reads.sales(svc.engine, caller.tenant_id, store_id, sku, start=start, end=end, limit=limit)
    return SalesHistoryPublic(store_id=store_id, sku=sku, items=[SalesPointPublic(**r) for r in rows])


def _safe_name(filename: str | None) -> str:
    """The upload's base name, cleaned (it names the file in reports); its suffix picks the reader."""
    name = _UNSAFE.sub("_", FilePath(filename or "").name).strip(" .")[:120]
    if not name.lower().endswith(SUFFIXES):
        raise UnsupportedUploadError(
            f"file {filename!r}: expected one of {', '.join(SUFFIXES)} (the suffix decides how it is read)"
        )
    return name


def _mapping(text: str | None) -> dict[str, str | None] | None:
    if text is None or not text.strip():
        return None
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise OrderNimbusError('mapping must be a JSON object such as {"sku": "Item"}') from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise OrderNimbusError(
            'mapping must be a JSON object of strings (or null: no such column) such as {"sku": "Item"}'
        )
    return value


def _shop(shops: tuple[ShopifyWebhook, ...], domain: str | None) -> ShopifyWebhook | None:
    return next((s for s in shops if domain and s.shop.lower() == domain.strip().lower()), None)
