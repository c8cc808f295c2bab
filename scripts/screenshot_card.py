"""Render a model-card HTML page to PNG with headless Chromium (for docs, reviews and CI artifacts).

Usage: python scripts/screenshot_card.py CARD.html OUT.png [--width 1120] [--height 3000]
                                         [--chromium /usr/bin/chromium]

Exits 2 with a clear message when Chromium is not installed; nothing is written then. The page
is self-contained, and network access is switched off as far as Chromium's flags allow. After
the shot it reports how many pixels carry the plots' colours (the p50 line and band blue, the
SHAP bars' orange), so "the plots are visible" is a number, not an impression.

To shoot the card of a real build: ``ordernimbus registry show --tenant T --version N --html
card.html`` then this script (tests/e2e/test_registry_flow.py does both on a small real build).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
# The card's plot colours (models/registry/card.py): p50 line / band, SHAP bars.
PLOT_COLOURS = {"backtest_blue": (0x4C, 0x78, 0xA8), "drivers_orange": (0xF5, 0x85, 0x18)}


def plot_pixels(png: Path, tolerance: int = 24) -> dict[str, int]:
    """How many pixels of the screenshot are within ``tolerance`` of each plot colour."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return {
        name: int((np.abs(rgb - np.array(colour, dtype=np.int16)) <= tolerance).all(axis=-1).sum())
        for name, colour in PLOT_COLOURS.items()
    }


def find_chromium(explicit: Path | None) -> Path | None:
    """The given binary, else /usr/bin/chromium, else chromium/chromium-browser on PATH."""
    if explicit is not None:
        return explicit if explicit.is_file() else None
    if DEFAULT_CHROMIUM.is_file():
        return DEFAULT_CHROMIUM
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def screenshot(chromium: Path, page: Path, out: Path, width: int, height: int) -> None:
    """Write ``out`` only once Chromium has produced a non-empty PNG (written then moved)."""
    with tempfile.TemporaryDirectory() as scratch:
        shot = Path(scratch) / "shot.png"
        command = [
            str(chromium),
            *FLAGS,
            f"--user-data-dir={scratch}/profile",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0 or not shot.exists() or shot.stat().st_size == 0:
            raise RuntimeError(
                f"Chromium failed (exit {result.returncode}) on {page}: {result.stderr.strip()[-800:]}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(shot), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the card HTML file")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1120)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument(
        "--chromium", type=Path, default=None, help="Chromium binary (default /usr/bin/chromium)"
    )
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"error: card page {args.page} does not exist", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        where = args.chromium or DEFAULT_CHROMIUM
        print(
            f"error: Chromium not found at {where} (nor on PATH); install it (e.g. apt-get install chromium) "
            "or pass --chromium /path/to/chromium. No screenshot written.",
            file=sys.stderr,
        )
        return 2
    try:
        screenshot(chromium, args.page, args.out, args.width, args.height)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = plot_pixels(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); plot pixels: "
          + ", ".join(f"{name} {n}" for name, n in counts.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
