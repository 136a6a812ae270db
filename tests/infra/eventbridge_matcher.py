"""A small, strict EventBridge event-pattern matcher for tests.

Why our own: moto's matcher does not descend into arrays of objects (a pattern on `detail.findings.Severity.Label`
never matches a real Security Hub event), and PyPI's `event-ruler` 0.3.0 (a 2023 gopy wrapper, single release) was
tried and is not faithful: it fails with "failed to match for payload" on a real Security Hub finding, rejects
`$or`, `prefix` and `numeric` as invalid patterns, and changes the working directory at import.

Semantics implemented (AWS "Event patterns" and "Content filtering" docs, Event Ruler README):
* Values in a leaf list are OR'ed; keys are AND'ed. A leaf list must be a non-empty JSON array.
* Exact match of strings, numbers (by value), booleans and null; types never mix ("5" is not 5, true is not 1).
* Arrays in the event: a leaf matches if any of the array's scalar values matches; an object pattern matches an
  array of objects if one element matches the whole sub-pattern ("array consistency": fields of one sub-pattern
  come from the same element).
* Operators: prefix, suffix (both also with equals-ignore-case inside), equals-ignore-case, anything-but (value,
  list, prefix, suffix, equals-ignore-case), numeric (one or two comparisons), exists, wildcard (`*` only), and
  `$or` (a list of sub-patterns, at any level).
* `exists` and every other operator look at leaf values only: an object is not a value, so {"exists": true} on a
  field holding an object does not match, and a missing field matches only {"exists": false}.
Anything else (cidr, unknown operators, malformed operands) raises `PatternError` instead of guessing.

`expand` compiles a pattern the way Event Ruler's JsonRuleCompiler does: every `$or` forks the pattern into one
sub-pattern per branch (nested and sibling `$or`s multiply), and the pattern matches when any sub-pattern does. The
number of sub-patterns is what a rule costs EventBridge; `matches` and `any(matches(p) for p in expand(...))` agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

_MISSING = object()
_NUMERIC_OPERATORS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}
_LOWER_BOUNDS = (">", ">=")
_UPPER_BOUNDS = ("<", "<=")


class PatternError(ValueError):
    """The pattern is not one EventBridge would accept (or uses an operator this matcher does not implement)."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether `event` matches `pattern`. Validates the pattern first."""
    validate(pattern)
    return _match_object(pattern, event)


# ------------------------------------------------------------------------------------------ $or expansion


def expand(pattern: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `$or`-free sub-patterns of `pattern` (Event Ruler: one "match branch" per path through the `$or`s)."""
    validate(pattern)
    return _expand(pattern)


def _expand(pattern: Mapping[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{}]
    for key, value in pattern.items():
        if key == "$or":
            options = [sub for branch in value for sub in _expand(branch)]
        elif isinstance(value, Mapping):
            options = [{key: sub} for sub in _expand(value)]
        else:
            options = [{key: value}]
        results = [_merge(result, option) for result in results for option in options]
    return results


def _merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(left)
    for key, value in right.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            # The same field both beside an `$or` and in one of its branches: not modelled here.
            raise PatternError(f"{key}: given both inside and beside an $or")
    return merged


# ------------------------------------------------------------------------------------------ validation


def validate(pattern: Any, path: str = "") -> None:
    if not isinstance(pattern, Mapping) or not pattern:
        raise PatternError(f"{path or 'pattern'}: must be a non-empty JSON object")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise PatternError(f"{where}: must be an array of at least two patterns")
            for i, branch in enumerate(value):
                validate(branch, f"{where}[{i}]")
        elif isinstance(value, Mapping):
            validate(value, where)
        elif isinstance(value, list):
            if not value:
                raise PatternError(f"{where}: a leaf must list at least one value or operator")
            for matcher in value:
                _validate_matcher(matcher, where)
        else:
            raise PatternError(f"{where}: leaf values must be in a JSON array, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _validate_string_operand(operator: str, operand: Any, where: str, *, allow_ignore_case: bool) -> None:
    if isinstance(operand, str):
        return
    if (
        allow_ignore_case
        and isinstance(operand, Mapping)
        and set(operand) == {"equals-ignore-case"}
        and isinstance(operand["equals-ignore-case"], str)
    ):
        return
    raise PatternError(f"{where}: {operator} needs a string operand, got {operand!r}")


def _validate_matcher(matcher: Any, where: str) -> None:
    if _is_scalar(matcher):
        return
    if not isinstance(matcher, Mapping) or len(matcher) != 1:
        raise PatternError(f"{where}: {matcher!r} is neither a value nor a single-operator object")
    ((operator, operand),) = matcher.items()
    if operator in ("prefix", "suffix"):
        _validate_string_operand(operator, operand, where, allow_ignore_case=True)
    elif operator in ("equals-ignore-case", "wildcard"):
        _validate_string_operand(operator, operand, where, allow_ignore_case=False)
    elif operator == "exists":
        if not isinstance(operand, bool):
            raise PatternError(f"{where}: exists needs true or false")
    elif operator == "numeric":
        _numeric_bounds(operand, where)
    elif operator == "anything-but":
        if isinstance(operand, list):
            same_type = all(isinstance(v, str) for v in operand) or all(_is_number(v) for v in operand)
            if not operand or not same_type:
                raise PatternError(f"{where}: anything-but list must hold only strings or only numbers")
        elif isinstance(operand, Mapping):
            if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise PatternError(f"{where}: unsupported anything-but operand {operand!r}")
            ((inner, inner_operand),) = operand.items()
            if inner == "equals-ignore-case" and isinstance(inner_operand, list):
                if not inner_operand or not all(isinstance(v, str) for v in inner_operand):
                    raise PatternError(f"{where}: anything-but equals-ignore-case list must hold strings")
            else:
                _validate_string_operand(inner, inner_operand, where, allow_ignore_case=False)
        elif not (isinstance(operand, str) or _is_number(operand)):
            raise PatternError(f"{where}: anything-but needs a string, a number or a list of them")
    else:
        raise PatternError(f"{where}: operator {operator!r} is not implemented by this matcher")


def _numeric_bounds(operand: Any, where: str) -> list[tuple[str, float]]:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise PatternError(f"{where}: numeric needs [op, number] or [op, number, op, number]")
    pairs = [(operand[i], operand[i + 1]) for i in range(0, len(operand), 2)]
    for op, number in pairs:
        if op not in _NUMERIC_OPERATORS or not _is_number(number):
            raise PatternError(f"{where}: bad numeric comparison {op!r} {number!r}")
    if len(pairs) == 2 and not (pairs[0][0] in _LOWER_BOUNDS and pairs[1][0] in _UPPER_BOUNDS):
        raise PatternError(f"{where}: a numeric range is a lower bound (> or >=) followed by an upper bound")
    return pairs


# ------------------------------------------------------------------------------------------ matching


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        return any(_match_object(pattern, element) for element in _flatten(value) if isinstance(element, Mapping))
    fields: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_object(branch, fields) for branch in sub):
                return False
            continue
        field = fields.get(key, _MISSING)
        if isinstance(sub, Mapping):
            target = field if isinstance(field, Mapping | list) else {}
            if not _match_object(sub, target):
                return False
        elif not _match_leaf(sub, field):
            return False
    return True


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _leaf_values(field: Any) -> list[Any]:
    if field is _MISSING or isinstance(field, Mapping):
        return []
    if isinstance(field, list):
        return [v for v in _flatten(field) if not isinstance(v, Mapping)]
    return [field]


def _match_leaf(matchers: list[Any], field: Any) -> bool:
    values = _leaf_values(field)
    for matcher in matchers:
        if isinstance(matcher, Mapping) and "exists" in matcher:
            if bool(values) == matcher["exists"]:
                return True
            continue
        if any(_match_value(matcher, value) for value in values):
            return True
    return False


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or value is None:
        return expected is None and value is None
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    if _is_number(expected):
        return _is_number(value) and float(value) == float(expected)
    return isinstance(value, str) and value == expected


def _string_test(operand: Any, value: Any, test: str) -> bool:
    if not isinstance(value, str):
        return False
    ignore_case = isinstance(operand, Mapping)
    text = operand["equals-ignore-case"] if ignore_case else operand
    subject, text = (value.casefold(), text.casefold()) if ignore_case else (value, text)
    if test == "prefix":
        return subject.startswith(text)
    if test == "suffix":
        return subject.endswith(text)
    return subject == text


def _wildcard(pattern: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _match_value(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, Mapping):
        return _equal(matcher, value)
    ((operator, operand),) = matcher.items()
    if operator in ("prefix", "suffix"):
        return _string_test(operand, value, operator)
    if operator == "equals-ignore-case":
        return _string_test({"equals-ignore-case": operand}, value, "equals")
    if operator == "wildcard":
        return _wildcard(operand, value)
    if operator == "numeric":
        return _is_number(value) and all(
            _NUMERIC_OPERATORS[op](float(value), float(bound)) for op, bound in _numeric_bounds(operand, "")
        )
    if operator == "anything-but":
        return _anything_but(operand, value)
    raise PatternError(f"operator {operator!r} is not implemented by this matcher")


def _anything_but(operand: Any, value: Any) -> bool:
    if isinstance(operand, list):
        return not any(_equal(excluded, value) for excluded in operand)
    if isinstance(operand, Mapping):
        ((inner, inner_operand),) = operand.items()
        if not isinstance(value, str):
            # anything-but with a string operator only ever matches strings.
            return False
        if inner == "wildcard":
            return not _wildcard(inner_operand, value)
        if inner == "equals-ignore-case":
            excluded = inner_operand if isinstance(inner_operand, list) else [inner_operand]
            return all(value.casefold() != e.casefold() for e in excluded)
        return not _string_test(inner_operand, value, inner)
    return not _equal(operand, value)
