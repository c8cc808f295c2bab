"""ETag construction and If-None-Match matching."""

from __future__ import annotations

from datetime import date

from serving.caching import cache_headers, matches, strong_etag


def test_etag_is_strong_stable_and_sensitive_to_every_part() -> None:
    base = strong_etag("forecasts", "set-1", "s1", None, date(2025, 1, 1), None, 100, None)
    assert base.startswith('"')
    assert base.endswith('"')
    assert not base.startswith("W/")
    assert base == strong_etag("forecasts", "set-1", "s1", None, date(2025, 1, 1), None, 100, None)
    variants = [
        strong_etag("forecasts", "set-2", "s1", None, date(2025, 1, 1), None, 100, None),
        strong_etag("forecasts", "set-1", "s2", None, date(2025, 1, 1), None, 100, None),
        strong_etag("forecasts", "set-1", None, "s1", date(2025, 1, 1), None, 100, None),
        strong_etag("forecasts", "set-1", "s1", None, date(2025, 1, 2), None, 100, None),
        strong_etag("forecasts", "set-1", "s1", None, date(2025, 1, 1), None, 99, None),
        strong_etag("forecasts", "set-1", "s1", None, date(2025, 1, 1), None, 100, "c"),
    ]
    assert len({base, *variants}) == 7


def test_if_none_match_uses_weak_comparison_lists_and_star() -> None:
    tag = strong_etag("current", "set-1")
    assert matches(tag, tag)
    assert matches(f'"nope", W/{tag}', tag)
    assert matches("*", tag)
    assert not matches('"nope"', tag)
    assert not matches(None, tag)
    assert cache_headers(tag) == {"ETag": tag, "Cache-Control": "private, max-age=60", "Vary": "X-API-Key"}
