"""Check a request against the AWS API's own shape before sending it (botocore ships the models).

botocore's ``ParamValidator`` checks required members, types, unknown members and minimum sizes;
the service enforces more (maximum lengths, name patterns, enums) and would only say so at call
time, in production. :func:`check_request` runs botocore's validator and then those constraints
too, walking the operation's input shape, so a feature group definition that SageMaker would
refuse fails in a unit test instead.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from features.store.base import FeatureStoreError


def check_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise :class:`FeatureStoreError` listing every way ``params`` breaks the operation's input shape."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    problems: list[str] = []
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        problems.append(report.generate_report())
    problems += _constraints(model.input_shape, params, operation)
    if problems:
        raise FeatureStoreError(
            f"{service} {operation} request does not match the API: " + "; ".join(problems)
        )


def _constraints(shape: Any, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    meta = shape.metadata
    out: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                out += _constraints(shape.members[name], member, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        out += _size(meta, len(value), path, "items")
        for i, item in enumerate(value):
            out += _constraints(shape.member, item, f"{path}[{i}]")
    elif kind == "string" and isinstance(value, str):
        out += _size(meta, len(value), path, "characters")
        pattern = _python_pattern(meta.get("pattern"))
        if pattern and not pattern.fullmatch(value):
            out.append(f"{path}={value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            out.append(f"{path}={value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long") and isinstance(value, int):
        out += _size(meta, value, path, "(value)")
    return out


# AWS models write patterns in Java's dialect: Unicode classes and supplementary characters as
# surrogate pairs. These are the constructs the SageMaker model uses, in Python's dialect.
# Letters become \w (a superset: the check may let through what AWS refuses, never the reverse).
_JAVA = (
    (r"\p{L}", r"\w"),
    (r"\p{N}", r"\d"),
    (r"\p{Z}", r"\s"),
    (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF"),
)


@lru_cache(maxsize=256)
def _python_pattern(java: str | None) -> re.Pattern[str] | None:
    if not java:
        return None
    text = java
    for old, new in _JAVA:
        text = text.replace(old, new)
    return re.compile(text, flags=re.DOTALL)


def _size(meta: dict[str, Any], size: int, path: str, unit: str) -> list[str]:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        return [f"{path} has {size} {unit}, expected {low}..{high}"]
    return []
