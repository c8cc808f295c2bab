"""Shared fixtures: real data cuts and isolated data homes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from realcuts import store_item_cut

from ordernimbus.settings import Settings, get_settings


@pytest.fixture
def sales_cut() -> pd.DataFrame:
    return store_item_cut()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """An isolated ORDERNIMBUS_HOME; step subprocesses inherit it through the environment."""
    monkeypatch.setenv("ORDERNIMBUS_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
