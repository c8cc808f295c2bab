"""Model cards: what an approver needs to decide on one version, as JSON and as one HTML page.

The card is built from what the registry already holds (metrics, gate, lineage, audit) plus two
optional files of the unpacked artifact, ``backtest.parquet`` and ``explain.json``. Anything
absent is named in ``card["missing"]`` and shown as such; nothing is guessed or filled in.
The JSON is strict (non-finite numbers become ``null``, shown as "n/a") and self-sufficient:
the HTML can be re-rendered from it alone, for example after storing it next to the artifact.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.registry.base import AuditEntry, ModelRegistry, ModelVersion, RegistryError

if TYPE_CHECKING:
    import pandas as pd

CARD_SCHEMA = "ordernimbus.model-card/1"
METRIC_KEYS = ("wape", "mase", "smape", "pinball", "coverage")
LOWER_IS_BETTER = frozenset({"wape", "mase", "smape", "pinball", "rmsse"})
BACKTEST_FILE = "backtest.parquet"
EXPLAIN_FILE = "explain.json"
BACKTEST_COLUMNS = ("store_id", "sku", "date", "window", "model", "actual", "p10", "p50", "p90")
TOP_DRIVERS = 12
TEMPLATES = Path(__file__).parent / "templates"


class CardError(RegistryError):
    title = "Model card input rejected"


def _num(value: Any) -> float | None:
    """A finite float, or None for anything missing, non-numeric or non-finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _better(metric: str, candidate: float | None, other: float | None, nominal: float | None) -> bool | None:
    """Whether ``candidate`` beats ``other`` on ``metric``; None when it cannot be said."""
    if candidate is None or other is None or candidate == other:
        return None
    if metric == "coverage":
        if nominal is None:
            return None
        return abs(candidate - nominal) < abs(other - nominal)
    if metric in LOWER_IS_BETTER:
        return candidate < other
    return None


def _nominal_coverage(metrics: dict[str, Any]) -> float | None:
    quantiles = [q for q in metrics.get("quantiles", []) if _num(q) is not None]
    return round(max(quantiles) - min(quantiles), 6) if len(quantiles) >= 2 else None


def metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scored model: the ensemble, each member, each baseline.

    A model that is both (AutoETS: a baseline the blend may lean on) has one row, "member, baseline":
    its backtest is the same in both roles.
    """
    rows: list[dict[str, Any]] = []
    if isinstance(metrics.get("ensemble"), dict):
        rows.append({"name": "ensemble", "kind": "ensemble", **_scores(metrics["ensemble"])})
    members = {n: s for n, s in (metrics.get("members") or {}).items() if isinstance(s, dict)}
    baselines = {n: s for n, s in (metrics.get("baselines") or {}).items() if isinstance(s, dict)}
    for name, scores in sorted(members.items()):
        kind = "member, baseline" if name in baselines else "member"
        rows.append({"name": name, "kind": kind, **_scores(scores)})
    for name, scores in sorted(baselines.items()):
        if name not in members:
            rows.append({"name": name, "kind": "baseline", **_scores(scores)})
    return rows


def _scores(scores: dict[str, Any]) -> dict[str, float | None]:
    return {key: _num(scores.get(key)) for key in METRIC_KEYS}


def champion_deltas(candidate: dict[str, Any], champion: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Ensemble metrics of two versions side by side: values, candidate − champion, who is better."""
    nominal = _nominal_coverage(candidate)
    mine, theirs = _scores(candidate.get("ensemble") or {}), _scores(champion.get("ensemble") or {})
    out: dict[str, dict[str, Any]] = {}
    for key in METRIC_KEYS:
        a, b = mine[key], theirs[key]
        delta = a - b if a is not None and b is not None else None
        out[key] = {"candidate": a, "champion": b, "delta": delta, "better": _better(key, a, b, nominal)}
    return out


def _windows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per backtest window: the ensemble's WAPE beside the gate's baseline's (and the best member's).

    An approver deciding on an override needs to see whether the ensemble lost by noise (a tie in
    every window) or loses everywhere. ``gated`` is the ensemble's out-of-sample WAPE where the gate
    scored that window (weights fitted on the older ones); the earliest window and older
    evaluations have none.
    """
    gate = metrics.get("gate") or {}
    baseline = gate.get("best_baseline")
    gated = {t.get("cutoff"): _num(t.get("ensemble_value")) for t in gate.get("per_window") or []}
    rows = []
    for w in metrics.get("windows") or []:
        members = {n: (m or {}).get("wape") for n, m in (w.get("members") or {}).items()}
        scored = {n: v for n, v in members.items() if v is not None}
        best = min(scored, key=lambda n: scored[n]) if scored else None
        rows.append(
            {
                "cutoff": w.get("cutoff"),
                "wape": _num((w.get("ensemble") or {}).get("wape")),
                "gated": gated.get(w.get("cutoff")),
                "baseline": baseline,
                "baseline_wape": _num(((w.get("baselines") or {}).get(baseline) or {}).get("wape")),
                "best_member": best,
                "best_member_wape": _num(scored[best]) if best else None,
            }
        )
    return rows


def _member_details(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each training step's ``details.json`` (as the evaluate step collected them), by member name."""
    return [(name, detail or {}) for name, detail in sorted((metrics.get("details") or {}).items())]


def _fallbacks(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model, how many series it forecast with a fallback and the commonest reason.

    A member that is a seasonal naive for every series (DeepAR on a tenant too young to train it)
    scores like one; an approver reading its row should know why.
    """
    series = (metrics.get("data") or {}).get("series")
    rows = []
    for name, detail in _member_details(metrics):
        reasons = list((detail.get("fallbacks") or {}).values())
        if reasons:
            commonest = max(set(reasons), key=reasons.count)
            rows.append({"model": name, "series": len(reasons), "of": series, "reason": commonest})
    return rows


def _clipped(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model, the share of rows it read as no demand rather than negative demand (DeepAR on counts
    with returns): an approver comparing a version trained before that rule should know why its
    DeepAR forecasts several times more."""
    rows = []
    for name, detail in _member_details(metrics):
        clipped = detail.get("returns_clipped") or {}
        if clipped.get("rows"):
            counts = clipped.get("distribution", "negative_binomial") == "negative_binomial"
            rows.append({"model": name, "rows": float(clipped["rows"]), "counts": counts})
    return rows


def _pooled(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model, how many series it forecast on the tenant's pooled week and year rather than their
    own (ARIMA), or whether it saw that season as a covariate (DeepAR): an approver comparing this
    version with one trained before the pooled season should know."""
    rows = []
    for name, detail in _member_details(metrics):
        pooled = detail.get("pooled_season") or {}
        if pooled.get("series") or pooled.get("covariate"):
            rows.append(
                {
                    "model": name,
                    "series": pooled.get("series"),
                    "of": pooled.get("of"),
                    "covariate": bool(pooled.get("covariate")),
                }
            )
    return rows


def _tail_check(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per tail quantile checked one window back: whether it kept its own weights, and the two pinball
    losses that decided it (``models.evaluation.check_tails``). Versions evaluated before the check
    have none."""
    check = (metrics.get("weighting") or {}).get("tail_check") or {}
    return [
        {
            "quantile": name,
            "kept": bool(figures.get("kept")),
            "own": _num(figures.get("own_weights")),
            "median": _num(figures.get("median_weights")),
            "window": figures.get("window"),
        }
        for name, figures in sorted(check.items(), key=lambda item: float(item[0].lstrip("p")))
    ]


def _gate(metrics: dict[str, Any], gate_passed: bool) -> dict[str, Any]:
    gate = dict(metrics.get("gate") or {})
    value, baseline = _num(gate.get("ensemble_value")), _num(gate.get("best_baseline_value"))
    ratio = value / baseline if value is not None and baseline else None
    return {
        "passed": gate_passed,
        "metric": gate.get("metric"),
        "max_ratio": _num(gate.get("max_ratio")),
        "best_baseline": gate.get("best_baseline"),
        "best_baseline_value": baseline,
        "ensemble_value": value,
        "ratio": ratio,
        "windows": [str(w) for w in gate.get("windows") or [] if w != "in-sample"],
        "recorded": bool(gate),
    }


def read_backtest(artifact_dir: Path) -> pd.DataFrame | None:
    """The artifact's backtest table, checked for the columns the card uses; None when absent."""
    import pandas as pd

    path = artifact_dir / BACKTEST_FILE
    if not path.exists():
        return None
    frame = pd.read_parquet(path)
    absent = [c for c in BACKTEST_COLUMNS if c not in frame.columns]
    if absent:
        raise CardError(f"{path}: missing column(s) {absent}; expected {list(BACKTEST_COLUMNS)}")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def series_wape(backtest: pd.DataFrame, model: str = "ensemble") -> pd.DataFrame:
    """WAPE of ``model`` per series over all windows; series with no demand at all are left out."""
    rows = backtest[backtest["model"] == model]
    rows = rows.assign(error=(rows["actual"] - rows["p50"]).abs(), volume=rows["actual"].abs())
    table = rows.groupby(["store_id", "sku"], as_index=False)[["error", "volume"]].sum()
    table = table[table["volume"] > 0]
    table = table.assign(wape=table["error"] / table["volume"])[["store_id", "sku", "wape"]]
    return table.sort_values(["wape", "store_id", "sku"], ignore_index=True)


def representative_series(backtest: pd.DataFrame) -> list[dict[str, Any]]:
    """Best, median and worst series by ensemble WAPE, each with its backtest points."""
    import pandas as pd

    table = series_wape(backtest)
    n = len(table)
    if n == 0:
        return []
    picked: dict[int, str] = {}
    for role, index in (("best", 0), ("median", (n - 1) // 2), ("worst", n - 1)):
        picked.setdefault(index, role)
    ensemble = backtest[backtest["model"] == "ensemble"]
    out = []
    for index, role in picked.items():
        pick = table.iloc[index]
        store, sku, wape = pick["store_id"], pick["sku"], float(pick["wape"])
        rows = ensemble[(ensemble["store_id"] == store) & (ensemble["sku"] == sku)].sort_values(
            ["window", "date"]
        )
        points = [
            {
                "date": pd.Timestamp(r.date).strftime("%Y-%m-%d"),
                "window": _window_label(r.window),
                **{k: _num(getattr(r, k)) for k in ("actual", "p10", "p50", "p90")},
            }
            for r in rows.itertuples(index=False)
        ]
        out.append(
            {"role": role, "store_id": str(store), "sku": str(sku), "wape": _num(wape), "points": points}
        )
    return out


def _window_label(window: Any) -> str:
    """A backtest cutoff as the evaluate step names it: the date alone (the saved backtest holds
    timestamps, and "2017-12-03 00:00:00" beside the gate's "2017-12-03" reads as another window)."""
    midnight = getattr(window, "normalize", None)  # a pandas Timestamp (pandas is imported lazily here)
    if midnight is not None and window == midnight():
        return str(window.date())
    return str(window)


def _backtest_section(backtest: pd.DataFrame, missing: list[str]) -> dict[str, Any] | None:
    from models.metrics import tail_shares

    ensemble = backtest[backtest["model"] == "ensemble"]
    if ensemble.empty:
        missing.append(f"{BACKTEST_FILE} has no rows for model 'ensemble': no backtest plots")
        return None
    inside = (ensemble["actual"] >= ensemble["p10"]) & (ensemble["actual"] <= ensemble["p90"])
    by_window = inside.groupby(ensemble["window"]).mean()  # windows in their own order (int or date)
    below, above = tail_shares(*(ensemble[c].to_numpy(dtype=float) for c in ("actual", "p10", "p90")))
    return {
        "rows": len(ensemble),
        "series": int(ensemble.groupby(["store_id", "sku"]).ngroups),
        "windows": [_window_label(w) for w in by_window.index],
        "coverage": _num(float(inside.mean())),
        "coverage_by_window": {_window_label(w): _num(float(v)) for w, v in by_window.items()},
        "below_p10": _num(below),
        "above_p90": _num(above),
        "representative": representative_series(backtest),
    }


def read_explain(artifact_dir: Path) -> dict[str, Any] | None:
    """``explain.json`` as top global drivers and per-series drivers; None when the file is absent.

    The contract (models/explain.py) is ``{"global": [{"feature", "importance"}], "per_sku":
    {"<store>|<sku>": [...]}}`` with importance = mean |SHAP| in units; ``mean_abs_shap`` is
    read as a synonym of ``importance``, and ``per_series`` of ``per_sku``.
    """
    path = artifact_dir / EXPLAIN_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        drivers = _top(raw["global"])
        per_sku = raw.get("per_sku", raw.get("per_series")) or {}
        series = {str(key): _top(items, 5) for key, items in dict(per_sku).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CardError(
            f'{path}: expected {{"global": [{{"feature": str, "importance": float}}, ...], "per_sku": '
            f'{{"<store>|<sku>": [...]}}}} ({exc!r})'
        ) from exc
    return {"global": drivers, "per_sku": series}


def _top(items: list[dict[str, Any]], n: int = TOP_DRIVERS) -> list[dict[str, Any]]:
    pairs = [
        (str(item["feature"]), float(item["importance"] if "importance" in item else item["mean_abs_shap"]))
        for item in items
    ]
    pairs.sort(key=lambda pair: -pair[1])
    return [{"feature": name, "importance": value, "mean_abs_shap": value} for name, value in pairs[:n]]


def read_drivers(artifact_dir: Path) -> list[dict[str, Any]] | None:
    """Top global SHAP drivers from ``explain.json``; None when the file is absent."""
    explained = read_explain(artifact_dir)
    return None if explained is None else list(explained["global"])


def _history(version: ModelVersion, audit: Sequence[AuditEntry] | None) -> list[dict[str, Any]] | None:
    if audit is None:
        return None
    return [
        {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
        for e in audit
        if e.tenant_id == version.tenant_id and e.version == version.version
    ]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def build_card(
    version: ModelVersion,
    champion: ModelVersion | None,
    artifact_dir: Path | None,
    *,
    audit: Sequence[AuditEntry] | None = None,
) -> dict[str, Any]:
    """The card of ``version`` as strict JSON; ``champion`` is the version it would replace."""
    metrics = version.metrics
    missing: list[str] = []
    backtest = read_backtest(artifact_dir) if artifact_dir is not None else None
    explained = read_explain(artifact_dir) if artifact_dir is not None else None
    drivers = explained["global"] if explained is not None else None
    if artifact_dir is None:
        missing.append("no artifact directory given: no backtest plots and no SHAP drivers")
    else:
        if backtest is None:
            missing.append(f"{BACKTEST_FILE} not in the artifact: no backtest plots or backtest coverage")
        if drivers is None:
            missing.append(f"{EXPLAIN_FILE} not in the artifact: no SHAP drivers")
    for key, what in (("ensemble", "ensemble metrics"), ("gate", "gate result"), ("data", "data range")):
        if not metrics.get(key):
            missing.append(f"metrics have no '{key}': {what} not shown")
    if champion is None:
        missing.append("no champion (no other approved version): no comparison")
    if audit is None:
        missing.append("approval history not provided")
    nominal = _nominal_coverage(metrics)
    section = _backtest_section(backtest, missing) if backtest is not None else None
    if section is not None and explained is not None:
        for series in section["representative"]:
            series["drivers"] = explained["per_sku"].get(f"{series['store_id']}|{series['sku']}")
    return {
        "schema": CARD_SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(),
        "model": {
            "tenant_id": version.tenant_id,
            "group": version.group,
            "version": version.version,
            "status": version.status,
            "artifact_uri": version.artifact_uri,
            "created_at": _iso(version.created_at),
            "created_by": version.created_by,
            "approved_at": _iso(version.approved_at),
            "decided_by": version.decided_by,
            "reason": version.reason,
            "override": version.override,
        },
        "setup": {k: metrics.get(k) for k in ("frequency", "horizon", "season_length", "quantiles")},
        "metrics": {"columns": list(METRIC_KEYS), "rows": metric_rows(metrics)},
        "champion": None
        if champion is None
        else {
            "version": champion.version,
            "status": champion.status,
            "approved_at": _iso(champion.approved_at),
            "deltas": champion_deltas(metrics, champion.metrics),
        },
        "gate": _gate(metrics, version.gate_passed),
        "coverage": {
            "nominal": nominal,
            "reported": _num((metrics.get("ensemble") or {}).get("coverage")),
            "backtest": section["coverage"] if section else None,
            "by_window": section["coverage_by_window"] if section else {},
            # which tail misses (an evaluation from before these keys reports None)
            "tails": {
                side: {
                    "reported": _num((metrics.get("ensemble") or {}).get(key)),
                    "backtest": section[side] if section else None,
                }
                for side, key in (("below_p10", "below_lower"), ("above_p90", "above_upper"))
            },
            "tail_check": _tail_check(metrics),
        },
        "windows": _windows(metrics),
        "fallbacks": _fallbacks(metrics),
        "pooled_season": _pooled(metrics),
        "returns_clipped": _clipped(metrics),
        "backtest": section,
        "drivers": drivers,
        "data": metrics.get("data"),
        "weights": metrics.get("weights"),
        "lineage": version.lineage,
        "history": _history(version, audit),
        "missing": missing,
    }


def card_for(registry: ModelRegistry, tenant: str, version: int, artifact_dir: Path | None) -> dict[str, Any]:
    """The card of one registered version against the serving version (if it is another one)."""
    target = registry.get(tenant, version)
    serving = registry.serving_version(tenant)
    champion = serving if serving is not None and serving.version != version else None
    return build_card(target, champion, artifact_dir, audit=registry.audit_log(tenant))


def compare(registry: ModelRegistry, tenant: str, a: int, b: int) -> dict[str, Any]:
    """Two versions side by side (for ``registry compare``): every scored model, gate, lineage, data."""
    first, second = registry.get(tenant, a), registry.get(tenant, b)
    nominal = _nominal_coverage(first.metrics) or _nominal_coverage(second.metrics)
    rows_a = {(r["kind"], r["name"]): r for r in metric_rows(first.metrics)}
    rows_b = {(r["kind"], r["name"]): r for r in metric_rows(second.metrics)}
    order = {"ensemble": 0, "member": 1, "baseline": 2}
    table = []
    for kind, name in sorted(rows_a.keys() | rows_b.keys(), key=lambda k: (order.get(k[0], 3), k[1])):
        for metric in METRIC_KEYS:
            va, vb = (
                (rows_a.get((kind, name)) or {}).get(metric),
                (rows_b.get((kind, name)) or {}).get(metric),
            )
            table.append(
                {
                    "kind": kind,
                    "model": name,
                    "metric": metric,
                    "a": va,
                    "b": vb,
                    "delta": vb - va if va is not None and vb is not None else None,
                    "b_better": _better(metric, vb, va, nominal),
                }
            )
    keys = sorted(first.lineage.keys() | second.lineage.keys())
    return {
        "tenant_id": tenant,
        "a": {"version": a, "status": first.status, "gate_passed": first.gate_passed},
        "b": {"version": b, "status": second.status, "gate_passed": second.gate_passed},
        "metrics": table,
        "lineage": {
            k: {
                "a": first.lineage.get(k),
                "b": second.lineage.get(k),
                "same": first.lineage.get(k) == second.lineage.get(k),
            }
            for k in keys
        },
        "data": {"a": first.metrics.get("data"), "b": second.metrics.get("data")},
    }


# -- HTML -----------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def plot_series(series: dict[str, Any]) -> str:
    """Actual vs p50 with the p10–p90 band, one band per backtest window; base64 PNG."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads

    fig = Figure(figsize=(7.6, 2.5))
    ax = fig.add_subplot()
    windows: dict[str, list[dict[str, Any]]] = {}
    for point in series["points"]:
        windows.setdefault(point["window"], []).append(point)
    for i, points in enumerate(windows.values()):
        dates = np.array([p["date"] for p in points], dtype="datetime64[D]")
        ax.fill_between(
            dates, [_nan(p["p10"]) for p in points], [_nan(p["p90"]) for p in points],
            color="#4c78a8", alpha=0.25, linewidth=0, label="p10–p90" if i == 0 else None,
        )  # fmt: skip
        ax.plot(
            dates, [_nan(p["p50"]) for p in points], color="#4c78a8", lw=1.5, label="p50" if i == 0 else None
        )
    actual = {p["date"]: p["actual"] for p in series["points"]}
    days = sorted(actual)
    ax.plot(
        np.array(days, dtype="datetime64[D]"), [_nan(actual[d]) for d in days],
        color="#222", lw=1, marker=".", ms=3, label="actual",
    )  # fmt: skip
    wape = "n/a" if series.get("wape") is None else f"{series['wape']:.3f}"
    ax.set_title(
        f"{series['role']}: store {series['store_id']} · sku {series['sku']} · WAPE {wape}", fontsize=9
    )
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.autofmt_xdate()
    return _png(fig)


def plot_drivers(drivers: list[dict[str, Any]]) -> str:
    """Horizontal bars of mean |SHAP| per feature, largest on top; base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 0.3 * len(drivers) + 0.8))
    ax = fig.add_subplot()
    ordered = list(reversed(drivers))
    ax.barh([d["feature"] for d in ordered], [d["mean_abs_shap"] for d in ordered], color="#f58518")
    ax.set_xlabel("mean |SHAP| (units)", fontsize=8)
    ax.tick_params(labelsize=8)
    return _png(fig)


def _fmt(value: Any, digits: int = 4) -> str:
    number = _num(value)
    return "n/a" if number is None else f"{number:.{digits}g}"


def _signed(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    return "0" if number == 0 else f"{number:+.4g}"


def _plain(value: Any) -> str:
    """Strings as they are, anything else as compact JSON (never a Python repr)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)


def _pct(value: Any) -> str:
    number = _num(value)
    return "n/a" if number is None else f"{100 * number:.1f}%"


def render_card_html(card: dict[str, Any], backtest: pd.DataFrame | None = None) -> str:
    """The card as one self-contained HTML page (inline CSS, plots as inline base64 PNGs).

    ``backtest`` (the artifact's backtest table) re-selects and re-draws the representative
    series from the full table; without it the points stored in the card are drawn.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    if backtest is not None:
        absent = [c for c in BACKTEST_COLUMNS if c not in backtest.columns]
        if absent:
            raise CardError(f"backtest frame: missing column(s) {absent}; expected {list(BACKTEST_COLUMNS)}")
        series = representative_series(backtest)
    else:
        series = (card.get("backtest") or {}).get("representative", [])
    known = {
        (s["store_id"], s["sku"]): s.get("drivers")
        for s in (card.get("backtest") or {}).get("representative", [])
    }
    plots = [
        dict(s, png=plot_series(s), drivers=known.get((s["store_id"], s["sku"])))
        for s in series
        if s["points"]
    ]
    drivers = card.get("drivers") or []
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters.update(num=_fmt, signed=_signed, pct=_pct, plain=_plain)
    return env.get_template("card.html").render(
        card=card, plots=plots, drivers_png=plot_drivers(drivers) if drivers else None
    )
