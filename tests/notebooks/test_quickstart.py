"""The quickstart notebook runs top to bottom on today's code, and its saved copy shows its plots.

The notebook is executed with nbclient in a kernel of this very interpreter (a kernelspec written
to a temporary JUPYTER_PATH, so a stray system-wide ``python3`` kernel cannot be picked up), in a
temporary working directory and with TMPDIR pointing there, so the notebook's temporary
ORDERNIMBUS_HOME is removed with the test's directory.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

pytestmark = pytest.mark.e2e
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"
KERNEL = "ordernimbus-quickstart-test"
PLOT_TAGS = ("plot-sku", "plot-actuals")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tagged(nb: Any, tag: str) -> Any:
    cells = [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def _pngs(cell: Any) -> list[bytes]:
    return [
        base64.b64decode(output["data"]["image/png"])
        for output in cell.get("outputs", [])
        if output.get("output_type") in ("display_data", "execute_result")
        and "image/png" in output.get("data", {})
    ]


def _text(nb: Any) -> str:
    parts: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_saved_notebook_holds_its_plots_and_no_errors() -> None:
    """The committed copy is executed: a reader on GitHub sees the plots without running anything."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert outputs, "the notebook was saved without outputs"
    assert not [output for output in outputs if output.output_type == "error"]
    for tag in PLOT_TAGS:
        pngs = _pngs(_tagged(nb, tag))
        assert pngs, tag
        assert all(png.startswith(PNG_MAGIC) for png in pngs), tag
    assert len(json.dumps(nb)) < 400_000, "keep the saved outputs small (one PNG per plot cell)"


def test_notebook_executes_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / KERNEL)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("ORDERNIMBUS_HOME", str(tmp_path / "must-not-be-used"))
    work = tmp_path / "work"
    work.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=900, allow_errors=False, resources={"metadata": {"path": str(work)}}
    )
    client.execute()

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    for tag in PLOT_TAGS:
        pngs = _pngs(_tagged(nb, tag))
        assert len(pngs) == 1, tag
        assert pngs[0].startswith(PNG_MAGIC), tag
        assert len(pngs[0]) > 10_000, tag  # a drawn figure, not a blank canvas
    text = _text(nb)
    assert "-> Succeeded" in text
    assert "Approved" in text
    assert "decision:" in text
    assert "fell inside p10–p90" in text
    homes = list(tmp_path.glob("ordernimbus-quickstart-*"))
    assert len(homes) == 1, "the notebook's state lives in one temporary home under TMPDIR"
    assert (homes[0] / "registry.db").is_file()
    assert not (tmp_path / "must-not-be-used").exists(), "an inherited ORDERNIMBUS_HOME was used"
    assert not list(work.iterdir()), "the notebook wrote into its working directory"
