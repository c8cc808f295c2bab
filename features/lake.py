"""The sales lake: one canonical Parquet table per tenant, replaced atomically on every upsert.

Why a single file per tenant: the embedded default serves tenants of up to a few million daily
rows, for which a rewrite is sub-second, and a whole-file ``os.replace`` gives readers exactly the
old or the new table, never a mix. Writers are serialised per tenant by an advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import RECORD_KEY, validate_sales
from features.frequency import FREQUENCY_KEY, FrequencyError, base, detect_frequency
from features.outages import METADATA_KEY as OUTAGES_KEY
from features.outages import Outage, dumps, loads
from ordernimbus.atomic import file_lock, replacing
from ordernimbus.tenancy import tenant_dir

SALES_FILE = "sales.parquet"
DATE_FORMAT_KEY = b"ordernimbus.date_format"


@dataclass(frozen=True)
class UpsertResult:
    rows_in: int
    rows_new: int
    rows_updated: int
    rows_unchanged: int
    rows_total: int
    frequency: str


def _until(until: pd.Timestamp | None) -> list[tuple[str, str, pd.Timestamp]] | None:
    """The parquet filter that keeps dates up to and including ``until`` (None: everything)."""
    return [("date", "<=", pd.Timestamp(until))] if until is not None else None


class SalesLake:
    """Canonical sales per tenant under ``root/<tenant>/sales.parquet``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, tenant: str) -> Path:
        return tenant_dir(self.root, tenant, SALES_FILE)

    def exists(self, tenant: str) -> bool:
        return self.path(tenant).exists()

    def read(self, tenant: str, until: pd.Timestamp | None = None) -> pd.DataFrame:
        """The tenant's sales (optionally only up to and including ``until``), sorted by series and date."""
        path = self.path(tenant)
        if not path.exists():
            return _empty(tenant)
        frame = pd.read_parquet(path, filters=_until(until))
        return frame.sort_values(list(RECORD_KEY), ignore_index=True)

    def date_range(
        self, tenant: str, until: pd.Timestamp | None = None
    ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last date of the tenant's sales (up to ``until``), reading the date column only."""
        path = self.path(tenant)
        if not path.exists():
            return None
        dates = pd.read_parquet(path, columns=["date"], filters=_until(until))["date"]
        return (pd.Timestamp(dates.min()), pd.Timestamp(dates.max())) if len(dates) else None

    def frequency(self, tenant: str) -> str:
        """The frequency stored with the tenant's data at ingest ('D' or 'W-XXX')."""
        return self._metadata(tenant).get(FREQUENCY_KEY, b"D").decode()

    def date_format(self, tenant: str) -> str | None:
        """How the tenant's text dates were last read ('%d/%m/%Y'...), to break a later file's tie."""
        raw = self._metadata(tenant).get(DATE_FORMAT_KEY)
        return raw.decode() if raw else None

    def outages(self, tenant: str) -> list[Outage]:
        """The periods the tenant marked as outages (``features.outages``), oldest first."""
        return loads(self._metadata(tenant).get(OUTAGES_KEY))

    def update_outages(self, tenant: str, change: Callable[[list[Outage]], list[Outage]]) -> list[Outage]:
        """Apply ``change`` to the tenant's outage list under the tenant's lock; the list before it.

        Read, change and write happen under one lock, so two marks at once cannot lose either. The
        sales are rewritten with the new list, atomically; an unchanged list writes nothing, and
        ``change`` raising leaves the file as it was.
        """
        with self._lock(tenant):
            meta = self._metadata(tenant)
            before = loads(meta.get(OUTAGES_KEY))
            after = change(list(before))
            if after != before:
                meta[OUTAGES_KEY] = dumps(after)
                self._replace(tenant, self.read(tenant), meta)
        return before

    def upsert(
        self, tenant: str, new: pd.DataFrame, source: str, date_format: str | None = None
    ) -> UpsertResult:
        """Merge ``new`` into the tenant's table: new keys are added, existing keys take the new values.

        The merged table is validated before it replaces the old one, so a failure leaves the lake
        byte-for-byte unchanged. ``date_format`` is how ``new``'s text dates were read; it is kept
        for the next upload (None keeps the one stored). The file's other metadata (outages) is
        carried over as it is.
        """
        new = validate_sales(new.assign(tenant_id=tenant), source)
        with self._lock(tenant):
            old = self.read(tenant)
            meta = self._metadata(tenant)
            stored = {k: meta.get(k) for k in (FREQUENCY_KEY, DATE_FORMAT_KEY)}
            if not old.empty:
                _same_weekday(meta.get(FREQUENCY_KEY, b"D").decode(), new, tenant)
            merged, counts = _merge(old, new)
            meta[FREQUENCY_KEY] = detect_frequency(merged).encode()
            if date_format:
                meta[DATE_FORMAT_KEY] = date_format.encode()
            unchanged = (
                counts[0] == 0
                and counts[1] == 0
                and list(merged.columns) == list(old.columns)
                and meta.get(DATE_FORMAT_KEY) == stored[DATE_FORMAT_KEY]
            )
            if unchanged and self.exists(tenant):
                # Same data again: leave the file (bytes and mtime) alone, so re-uploads are no-ops.
                frequency = (stored[FREQUENCY_KEY] or b"D").decode()
                return UpsertResult(len(new), *counts, len(merged), frequency)
            if not old.empty:  # else merged holds exactly the rows of ``new``, validated above
                validate_sales(merged, f"{source} (merged with stored data)")
            self._replace(tenant, merged, meta)
        return UpsertResult(len(new), *counts, len(merged), meta[FREQUENCY_KEY].decode())

    def _metadata(self, tenant: str) -> dict[bytes, bytes]:
        """The sales file's own metadata (frequency, date format, outages): one schema read."""
        path = self.path(tenant)
        if not path.exists():
            return {}
        meta = pq.read_schema(path).metadata or {}
        return {k: v for k, v in meta.items() if k.startswith(b"ordernimbus.")}

    def _replace(self, tenant: str, frame: pd.DataFrame, meta: dict[bytes, bytes]) -> None:
        """Write ``frame`` with ``meta`` (``_metadata``'s keys) beside pandas' own, then swap it in."""
        path = self.path(tenant)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        kept = {k: v for k, v in meta.items() if v and v != b"[]"}  # an emptied outage list is none
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **kept})
        with replacing(path, durable=True) as tmp:
            pq.write_table(table, tmp, compression="zstd")

    def _lock(self, tenant: str) -> AbstractContextManager[None]:
        return file_lock(tenant_dir(self.root, tenant) / ".lock")


WEEKDAYS = {"MON": "Mondays", "TUE": "Tuesdays", "WED": "Wednesdays", "THU": "Thursdays",
            "FRI": "Fridays", "SAT": "Saturdays", "SUN": "Sundays"}  # fmt: skip


def _same_weekday(stored: str, new: pd.DataFrame, tenant: str) -> None:
    """Refuse dates off a weekly tenant's weekday: a Monday in a Friday-weekly tenant would be a
    new week beside the old ones (and days uploaded into a weekly tenant made it daily).

    A daily tenant's upload that reads as weekly is only warned about (``features.ingest``): a
    stall trading on Mondays only writes the same dates as weekly totals would.
    """
    if base(stored) != "W":
        return
    anchor = stored.split("-", 1)[1]
    dates = pd.DatetimeIndex(new["date"].drop_duplicates()).sort_values()
    off = dates[dates.strftime("%a").str.upper() != anchor]
    if len(off):
        raise FrequencyError(
            f"tenant {tenant!r} holds weekly sales dated on {WEEKDAYS[anchor]}; this upload has "
            f"{len(off)} date(s) on other days (first {off[0].date()}, a {off[0].day_name()}): upload "
            f"weekly totals dated on {WEEKDAYS[anchor]}"
        )


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, tuple[int, int, int]]:
    """Old and new records by key: new keys added, stored keys updated with the upload's columns.

    A column the upload does not carry keeps its stored values for the keys it updates: a
    units-only correction of a day erased that day's price and covariates (NaN) without a word.
    """
    key = list(RECORD_KEY)
    new = new.drop(columns=[c for c in new.columns if c.startswith("_")])
    if old.empty:
        return new.sort_values(key, ignore_index=True), (len(new), 0, 0)
    carried = set(new.columns)
    columns = list(dict.fromkeys([*old.columns, *new.columns]))
    old = old.reindex(columns=columns)
    new = new.reindex(columns=columns)
    # Aligned on the record key, not merged with suffixes: a covariate named "unit_price_old" met
    # the "_old" suffix of "unit_price" and every later upload of the tenant failed.
    old_keys, new_keys = pd.MultiIndex.from_frame(old[key]), pd.MultiIndex.from_frame(new[key])
    is_new = ~new_keys.isin(old_keys)
    value_cols = [c for c in columns if c not in key]
    before = old.set_index(old_keys)[value_cols].reindex(new_keys[~is_new])
    kept_cols = [c for c in value_cols if c not in carried]
    for column in kept_cols:
        values = new[column].to_numpy(
            dtype=old[column].dtype if old[column].dtype == object else None, copy=True
        )
        values[~is_new] = before[column].to_numpy()
        new[column] = values
    after = new.set_index(new_keys)[value_cols][~is_new]
    same = ((after == before) | (after.isna() & before.isna())).all(axis=1)
    unchanged = int(same.sum())
    updated = len(same) - unchanged
    kept = old[~old_keys.isin(new_keys)]
    merged = pd.concat([kept, new], ignore_index=True).sort_values(key, ignore_index=True)
    return merged[columns], (int(is_new.sum()), updated, unchanged)


def _empty(tenant: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenant_id": pd.Series(dtype=str),
            "store_id": pd.Series(dtype=str),
            "sku": pd.Series(dtype=str),
            "date": pd.Series(dtype="datetime64[ns]"),
            "units": pd.Series(dtype=float),
        }
    )
