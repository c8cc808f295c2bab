"""What a check leaves behind for people: the JSON summary, Evidently's HTML, a tenant overview page.

Per check, under ``<reports>/<tenant>/monitor/<check_id>/``: ``summary.json`` (the decision, its
reasons and the evidence), ``drift.html`` (Evidently's data drift report) and ``accuracy.html``
(Evidently's regression quality of the median forecast against the actuals). Every file is
written to a temporary name and renamed, so a reader never sees half a report.

:func:`render_overview` is ``ordernimbus monitor report --html``: one self-contained page with
the decisions and their reasons, accuracy over time beside the backtest, and the latest drift.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.store.monitoring import AccuracyRow, Decision
from ordernimbus.atomic import replacing, write_text

SUMMARY, DRIFT_HTML, ACCURACY_HTML = "summary.json", "drift.html", "accuracy.html"


def write_check_reports(folder: Path, summary: dict[str, Any], drift: Any, quality: Any) -> dict[str, Path]:
    """Write the summary and, when given, the Evidently snapshots' HTML; returns the written paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "summary": write_text(folder / SUMMARY, json.dumps(summary, indent=2, default=str, allow_nan=False))
    }
    for name, snapshot in ((DRIFT_HTML, drift), (ACCURACY_HTML, quality)):
        if snapshot is not None:
            out[name] = _atomic_html(folder / name, snapshot)
    return out


def check_summary(decision: Decision, folder: Path | None) -> dict[str, Any]:
    """``summary.json``: the decision, its reasons and every piece of evidence, in one document."""
    through = decision.actuals_through
    return {
        "check_id": decision.check_id,
        "tenant_id": decision.tenant_id,
        "checked_at": decision.checked_at.isoformat(),
        "origin": decision.origin,
        "retrain": decision.retrain,
        "action": decision.action,
        "run_id": decision.run_id,
        "model_version": decision.model_version,
        "actuals_through": through.isoformat() if through is not None else None,
        "reasons": decision.reasons,
        "reports": str(folder) if folder is not None else None,
        **decision.details,
    }


def _atomic_html(path: Path, snapshot: Any) -> Path:
    with replacing(path, suffix=".html") as tmp:  # Evidently picks the format by the suffix
        snapshot.save_html(str(tmp))
    return path


def render_overview(
    tenant: str, decisions: Sequence[Decision], series: Sequence[AccuracyRow], reports_dir: Path
) -> str:
    """The tenant's monitoring page (newest decisions first); plots are inline PNGs."""
    latest = decisions[0] if decisions else None
    parts = [
        f"<h1>Monitoring: tenant {_e(tenant)}</h1>",
        _latest_section(latest, reports_dir) if latest else "<p>No check has run yet.</p>",
        _accuracy_section(series, latest),
        _drift_section(latest),
        _decisions_section(decisions),
    ]
    return _PAGE.format(title=_e(f"OrderNimbus monitoring - {tenant}"), body="\n".join(parts))


def _latest_section(d: Decision, reports_dir: Path) -> str:
    folder = reports_dir / d.tenant_id / "monitor" / d.check_id
    links = [
        f'<a href="{_e(p.as_uri())}">{_e(name)}</a>'
        for name, p in (
            ("drift report", folder / DRIFT_HTML),
            ("accuracy report", folder / ACCURACY_HTML),
            ("summary.json", folder / SUMMARY),
        )
        if p.exists()
    ]
    verdict = "retrain" if d.retrain else "no retraining"
    return (
        f"<h2>Latest check {d.checked_at:%Y-%m-%d %H:%M} UTC: {verdict} ({_e(d.action)})</h2>"
        f"<p>actuals through {d.actuals_through}; model version {d.model_version}; "
        f"run {_e(d.run_id or '-')}; "
        f"{' · '.join(links) or 'no reports on this machine'}</p>"
        + _table(
            ["rule", "fired", "why"],
            [[r["rule"], "yes" if r["fired"] else "no", r["detail"]] for r in d.reasons],
        )
        + (f"<p><b>held back:</b> {_e(d.details['debounce'])}</p>" if d.details.get("debounce") else "")
    )


def _accuracy_section(series: Sequence[AccuracyRow], latest: Decision | None) -> str:
    trailing = latest.details.get("trailing_wape", {}) if latest else {}
    backtest = latest.details.get("backtest_wape") if latest else None
    if not series and not trailing:
        return "<h2>Accuracy</h2><p>No forecasts have been scored yet.</p>"
    rows = [
        [f"{r.checked_at:%Y-%m-%d %H:%M}" if r.checked_at else "", f"{r.start_date}..{r.end_date}",
         r.model_version, r.n, _f(r.wape), _f(r.bias), _f(r.pinball), _f(r.coverage)]
        for r in reversed(series)
    ]  # fmt: skip
    plot = _plot_trailing(trailing, backtest, latest) if trailing else ""
    return (
        "<h2>Accuracy</h2>"
        + plot
        + _table(["checked", "days", "version", "n", "WAPE", "bias", "pinball", "p10-p90 coverage"], rows)
    )


def _drift_section(latest: Decision | None) -> str:
    drift = latest.details.get("drift", {}) if latest else {}
    if not drift or "columns" not in drift:
        return f"<h2>Drift</h2><p>{_e(str(drift.get('skipped', 'not measured')))}</p>"
    windows, psi = drift.get("windows", {}), drift.get("psi", {})
    rows = [
        [
            c["column"],
            c["kind"],
            c["method"],
            _f(c["score"]),
            _f(c["threshold"]),
            "yes" if c["drifted"] else "no",
        ]
        for c in drift["columns"]
    ]
    return (
        f"<h2>Drift</h2><p>current {_e(windows.get('current', ''))} "
        f"vs reference {_e(windows.get('reference', ''))}"
        f" ({_e(windows.get('alignment', ''))}); share of drifted columns {_f(drift.get('share'))}; "
        f"PSI of {_e(str(psi.get('column')))} {_f(psi.get('value'))} (noise floor {_f(psi.get('floor'))})</p>"
        + _table(["column", "kind", "test", "score", "threshold", "drifted"], rows)
    )


def _decisions_section(decisions: Sequence[Decision]) -> str:
    rows = [
        [f"{d.checked_at:%Y-%m-%d %H:%M}", d.origin, "yes" if d.retrain else "no", d.action, d.run_id or "",
         "; ".join(r["rule"] for r in d.reasons if r["fired"]) or "-"]
        for d in decisions
    ]  # fmt: skip
    return "<h2>Decisions</h2>" + _table(
        ["checked", "origin", "retrain", "action", "run", "rules fired"], rows
    )


def _plot_trailing(trailing: dict[str, float], backtest: float | None, latest: Decision | None) -> str:
    import pandas as pd
    from matplotlib.figure import Figure  # no pyplot: no global state

    days = pd.to_datetime(list(trailing))
    fig = Figure(figsize=(8, 2.8), dpi=100)
    ax = fig.subplots()
    ax.plot(days, list(trailing.values()), marker="o", ms=3, label="trailing WAPE (live)")
    if backtest is not None:
        margin = (latest.details.get("policy", {}).get("accuracy_margin", 0) if latest else 0) or 0
        ax.axhline(backtest, color="grey", ls="--", lw=1, label="backtest WAPE")
        ax.axhline(backtest * (1 + margin), color="red", ls=":", lw=1, label="retrain above")
    ax.set_ylabel("WAPE")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="trailing WAPE" src="data:image/png;base64,{encoded}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
</style></head>
<body>
{body}
</body></html>
"""
