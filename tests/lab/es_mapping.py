"""Check documents against deploy/elasticsearch/index-template.json the way Elasticsearch would index them.

Stricter than Elasticsearch on purpose: a field the template does not declare is an error (with `dynamic: false`
Elasticsearch would keep it unsearchable without a word), and keyword fields must hold strings (Elasticsearch would
coerce a number, hiding a type drift that a later line could turn into a rejected bulk item).
"""

from __future__ import annotations

import re
from typing import Any

# strict_date_optional_time as out_es writes it: date, time, optional fraction, Z or an offset.
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def flat_properties(mappings: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Leaf fields by full dotted name, whether the template writes "a.b" or nests {"a": {"properties": ...}}."""
    leaves: dict[str, dict[str, Any]] = {}
    for name, spec in mappings.get("properties", {}).items():
        full = f"{prefix}{name}"
        if "properties" in spec:
            leaves.update(flat_properties(spec, f"{full}."))
        else:
            leaves[full] = spec
    return leaves


def object_conflicts(names: list[str]) -> list[str]:
    """Names used both as a leaf and as an object path ("a" and "a.b"): Elasticsearch rejects one of them."""
    known = set(names)
    return sorted(
        f"{name!r} is a value but {other!r} makes it an object"
        for other in known
        for i in range(len(other))
        if other[i] == "." and (name := other[:i]) in known
    )


def value_error(es_type: str, value: Any) -> str | None:
    """Why Elasticsearch would not index value into a field of es_type as intended, or None."""
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}, but the schema is flat"
    if es_type in {"keyword", "text", "match_only_text", "wildcard"}:
        return None if isinstance(value, str) else f"{type(value).__name__} {value!r} in a {es_type} field"
    if es_type == "long":
        ok = isinstance(value, int) and not isinstance(value, bool) and LONG_MIN <= value <= LONG_MAX
        return None if ok else f"{type(value).__name__} {value!r} in a long field"
    if es_type == "date":
        ok = isinstance(value, str) and ISO_DATE.match(value) is not None
        return None if ok else f"{value!r} is not an ISO 8601 date"
    raise AssertionError(f"es_mapping does not know type {es_type!r}: teach value_error first")


def document_errors(pairs: list[tuple[str, Any]], properties: dict[str, dict[str, Any]]) -> list[str]:
    """Every reason this document (ordered key/value pairs) would not index cleanly under the template."""
    keys = [k for k, _ in pairs]
    errors = [f"duplicate key {k!r}" for k in sorted({k for k in keys if keys.count(k) > 1})]
    errors += object_conflicts(keys)
    for key, value in pairs:
        spec = properties.get(key)
        if spec is None:
            errors.append(f"{key!r} is not declared in the index template")
            continue
        problem = value_error(str(spec.get("type")), value)
        if problem:
            errors.append(f"{key}: {problem}")
    return errors
