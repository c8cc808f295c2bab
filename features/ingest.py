"""Ingest one uploaded file into a tenant's sales lake, with a quality report per upload.

The order of work is what makes an upload safe: everything is read and checked before the lake is
touched, :meth:`SalesLake.upsert` is the single atomic write, and the report is written after it.
A refused upload (strict mode and any problem, or a problem with the file as a whole) leaves the lake
exactly as it was and still gets a report saying why. Lenient mode stores the good rows and writes
the rejected ones, each with its reasons, to a quarantine CSV beside the report.

Idempotence comes from the lake: a record is keyed by (store, sku, date), so the same file twice
finds every record unchanged, and the lake file is not rewritten (:class:`UpsertResult` counts say so).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import ContractError, Problem
from features.frequency import FrequencyError
from features.lake import SalesLake, UpsertResult
from features.sources.load import Parsed, ambiguous_hint, load_upload, problems_to_error
from features.sources.quarantine import write_quarantine
from features.validation import quality_checks, render_html
from ordernimbus.atomic import write_text
from ordernimbus.tenancy import tenant_dir, validate_tenant

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class IngestResult:
    upsert: UpsertResult
    report: dict[str, Any]
    report_json: Path
    report_html: Path
    quarantine: Path | None
    source_rows: int


class UploadRejectedError(ContractError):
    """The upload changed nothing; its report (if it could be written) says why."""

    def __init__(
        self, problems: list[Problem], total: int, report_json: Path | None, report_html: Path | None
    ):
        super().__init__(problems, total)
        self.report_json = report_json
        self.report_html = report_html


# Dates a week apart that make a daily tenant's upload worth a warning (weekly totals read as days).
WEEKLY_LOOKING_DATES = 4


class UploadTooLargeError(UploadRejectedError):
    status = 413
    title = "Upload too large"


def ingest_file(  # noqa: PLR0917 (the CLI and the API call it positionally, as specified)
    path: Path,
    tenant: str,
    lake: SalesLake,
    reports_dir: Path,
    mapping: dict[str, str | None] | dict[str, str] | Path | None = None,
    lenient: bool = False,
    max_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    today: date | None = None,
) -> IngestResult:
    """Read, check and upsert ``path`` (CSV, CSV.GZ, XLSX, Parquet, Shopify JSON or a folder of pages).

    ``mapping`` maps canonical fields to the file's columns (dict or JSON file); unnamed fields are
    detected from the headers. ``today`` (default: the UTC date) bounds future dates; it is a
    parameter so a test or a backfill can pin it. Raises :class:`UploadRejectedError` (a ContractError
    listing the first 20 problems by file, row and column) when nothing was stored.
    """
    validate_tenant(tenant)
    path = Path(path)
    today = today or datetime.now(UTC).date()
    upload = _Upload(path, tenant, reports_dir, lenient)
    was_daily = lake.exists(tenant) and lake.frequency(tenant) == "D"
    try:
        _check_size(path, max_bytes)
        parsed = load_upload(
            path,
            mapping=mapping,
            progress=progress,
            today=today,
            lenient=lenient,
            max_bytes=max_bytes,
            prefer_date_format=lake.date_format(tenant),
        )
        upload.absorb(parsed, today)
        if len(parsed.problems) and not lenient:
            raise problems_to_error(parsed.problems, MAX_PROBLEMS)
        if parsed.records.empty:
            raise _nothing_to_store(path.name, parsed)
        result = lake.upsert(tenant, parsed.records, source=path.name, date_format=_day_order(parsed))
    except ContractError as exc:
        raise upload.rejected(
            exc, type(exc) if isinstance(exc, UploadTooLargeError) else UploadRejectedError
        ) from None
    except FrequencyError as exc:  # from the merge with the stored dates, after a clean parse
        source = upload.report.get("source", {})  # absorbed from the parse
        hints = [ambiguous_hint(source["date_format"])] if source.get("date_format_ambiguous") else []
        problems = [Problem(path.name, None, "date", text) for text in [str(exc), *hints]]
        raise upload.rejected(ContractError(problems), UploadRejectedError) from None
    dates = parsed.records["date"].nunique()
    if was_daily and (parsed.frequency or "D") != "D" and dates >= WEEKLY_LOOKING_DATES:
        upload.report["warnings"].append(
            f"tenant {tenant!r} holds daily sales, but this upload's {dates} dates are a week apart "
            f"({parsed.frequency}): weekly totals are read as one day's sales each (then six days of "
            "none); upload them under a tenant of their own. Daily sales on one weekday are fine."
        )
    if parsed.facts.get("level") == "transactions" and result.rows_updated:
        upload.report["warnings"].append(
            f"{result.rows_updated:,} store x SKU x day total(s) already stored were replaced by this "
            "upload's sums of its transactions: a day's transactions must all come in one upload (a "
            "re-export of whole days is fine; the rest of a day sent later replaces its first part)"
        )
    if len(parsed.problems):  # lenient: the rows left out, beside the report, once the good ones are in
        upload.quarantine = write_quarantine(parsed.quarantine, upload.folder / "quarantine.csv")
    report = upload.accepted(result)
    json_path, html_path = upload.write(report)
    return IngestResult(
        result, report, json_path, html_path, upload.quarantine, parsed.facts["rows"]["source"]
    )


def _day_order(parsed: Parsed) -> str | None:
    """The upload's date format, when it tells whether the tenant writes the day or the month first.

    Only then is it worth remembering: an ISO file says nothing about the order (it replaced a
    day-first tenant's format and its next 03/02/2025 was read as 2 March), nor does a guess
    between two orders that both read every date (it became the tenant's format and decided the
    next tie without a warning).
    """
    source = parsed.facts.get("source", {})
    fmt = str(source.get("date_format", ""))
    ordered = fmt.startswith(("%d", "%m")) and "%d" in fmt and "%m" in fmt
    return fmt if ordered and not source.get("date_format_ambiguous") else None


def _check_size(path: Path, max_bytes: int | None) -> None:
    if not path.exists():
        raise ContractError([Problem(path.name, None, None, "no such file or folder")])
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.glob("*.json"))
    if max_bytes is not None and size > max_bytes:
        raise UploadTooLargeError(
            [
                Problem(
                    path.name,
                    None,
                    None,
                    f"the file has {size:,} bytes, more than the limit of {max_bytes:,}",
                )
            ],
            1,
            None,
            None,
        )
    if size == 0:
        raise ContractError([Problem(path.name, None, None, "the file is empty (0 bytes)")])


def _nothing_to_store(name: str, parsed: Parsed) -> ContractError:
    if len(parsed.problems):
        first = problems_to_error(parsed.problems, MAX_PROBLEMS)
        first.problems.insert(0, Problem(name, None, None, "every row was rejected; nothing to store"))
        return first
    return ContractError([Problem(name, None, None, "the file has a header but no data rows")])


class _Upload:
    """The report of one upload as it takes shape, and where it is written."""

    def __init__(self, path: Path, tenant: str, reports_dir: Path, lenient: bool) -> None:
        self.started = time.monotonic()
        created = datetime.now(UTC)
        self.upload_id = f"{created:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"
        self.folder = tenant_dir(reports_dir, tenant, "uploads", self.upload_id)
        self.quarantine: Path | None = None
        self.report: dict[str, Any] = {
            "upload_id": self.upload_id,
            "tenant_id": tenant,
            "file": path.name,
            "created_at": created.isoformat(timespec="seconds"),
            "mode": "lenient" if lenient else "strict",
            "status": "rejected",
            "errors": {"total": 0, "first": []},
            "warnings": [],
        }

    def absorb(self, parsed: Parsed, today: date) -> None:
        records = parsed.records
        self.report |= parsed.facts
        self.report["records"] = {
            "count": len(records),
            "series": int(records[["store_id", "sku"]].drop_duplicates().shape[0]) if len(records) else 0,
            "date_min": records["date"].min().date().isoformat() if len(records) else None,
            "date_max": records["date"].max().date().isoformat() if len(records) else None,
            "frequency": parsed.frequency,
            "columns": [c for c in records.columns],
        }
        self.report["warnings"] += parsed.warnings
        if len(records) and parsed.frequency:
            checks, warnings = quality_checks(records, parsed.frequency, today, self.report["tenant_id"])
            self.report["checks"] = checks
            self.report["warnings"] += warnings
        self.report["errors"] = {
            "total": len(parsed.problems),
            "first": parsed.problems.head(MAX_PROBLEMS).to_dict(orient="records"),
        }
        if len(parsed.problems):
            self.report["warnings"].append(
                f"{self.report['rows']['rejected']:,} row(s) rejected ({len(parsed.problems):,} problem(s))"
                + (
                    "; written to quarantine.csv with the reason for each"
                    if self.report["mode"] == "lenient"
                    else ""
                )
            )

    def accepted(self, result: UpsertResult) -> dict[str, Any]:
        self.report["status"] = "accepted"
        self.report["lake"] = asdict(result)
        self.report["quarantine"] = self.quarantine.name if self.quarantine else None
        self.report["seconds"] = round(time.monotonic() - self.started, 3)
        return self.report

    def rejected(self, exc: ContractError, kind: type[UploadRejectedError]) -> UploadRejectedError:
        self.report["errors"] = {"total": exc.total, "first": [asdict(p) for p in exc.problems]}
        self.report["status"] = "rejected"
        self.report["lake"] = None
        self.report["quarantine"] = None
        self.report["seconds"] = round(time.monotonic() - self.started, 3)
        json_path, html_path = self.write(self.report)
        return kind(exc.problems, exc.total, json_path, html_path)

    def write(self, report: dict[str, Any]) -> tuple[Path, Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_finite(report), indent=2, default=_jsonable, allow_nan=False)
        json_path = write_text(self.folder / "report.json", text)
        html_path = write_text(self.folder / "report.html", render_html(json.loads(json_path.read_text())))
        return json_path, html_path


def _finite(value: Any) -> Any:
    """NaN has no JSON spelling: it becomes null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp | date):
        return value.isoformat()
    if isinstance(value, Path):
        return value.name
    if value is pd.NaT:
        return None
    raise TypeError(f"cannot write {type(value).__name__} to the report")
