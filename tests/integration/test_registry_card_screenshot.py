"""The card renders in a real browser: headless Chromium turns it into a PNG (skipped without Chromium)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.registry.card import build_card, render_card_html
from models.registry.local import LocalRegistry

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "screenshot_card.py"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="/usr/bin/chromium is not installed"),
]


def test_screenshot_of_a_card(tmp_path: Path) -> None:
    registry = LocalRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    version = registry.register("acme", "s3://b/1", {"ensemble": {"wape": 0.2}}, {"run": "r1"}, True)
    page = tmp_path / "card.html"
    page.write_text(render_card_html(build_card(version, None, None, audit=registry.audit_log("acme"))))
    out = tmp_path / "shots" / "card.png"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(page), str(out), "--height", "1200"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1120, 1200)
