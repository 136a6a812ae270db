"""Renders docs/configuration.md's reference section from the pydantic policy model, so the two cannot drift.

`make docs` rewrites the file; a test fails when the committed file differs from what this renders.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from findings_router.settings.schema import Policy

BEGIN = "<!-- BEGIN GENERATED REFERENCE (make docs) -->"
END = "<!-- END GENERATED REFERENCE -->"


def _schema_type(prop: dict[str, Any]) -> str:
    """A short human type from a JSON-schema property: `list of LOW, HIGH…`, `int 1–10`, `Retry`."""
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        parts = [_schema_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(parts)
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return "list of " + _schema_type(prop.get("items", {}))
    if kind == "object":
        extra = prop.get("additionalProperties")
        return f"map of {_schema_type(extra)}" if isinstance(extra, dict) else "map"
    text = {"string": "string", "integer": "int", "number": "number", "boolean": "bool"}.get(kind, str(kind))
    if prop.get("format") == "date":
        text = "date (YYYY-MM-DD)"
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum")
    if low is not None or high is not None:
        text += f" {'' if low is None else low}–{'' if high is None else high}"
    if "pattern" in prop:
        text += f" matching `{prop['pattern']}`"
    if "minLength" in prop:
        text += f" (min length {prop['minLength']})"
    return text


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(see below)"
    if value is None:
        return "-"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value!r}`".replace("'", "")


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    """Every model in an annotation, however deep (optional, lists, maps, annotated unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_model_types(arg))
    return found


def _models(model: type[BaseModel], prefix: str, out: list[tuple[str, type[BaseModel]]]) -> None:
    out.append((prefix, model))
    for name, field in model.model_fields.items():
        origin = typing.get_origin(field.annotation)
        for t in _model_types(field.annotation):
            if all(t is not m for _, m in out):
                path = f"{prefix}.{name}" if prefix else name
                if origin is list:
                    path += "[]"
                elif origin is dict:
                    kind = typing.get_args(t.model_fields["type"].annotation) if "type" in t.model_fields else ()
                    path += f".<name> (type: {kind[0]})" if kind else ".<name>"
                _models(t, path, out)


def render_reference() -> str:
    models: list[tuple[str, type[BaseModel]]] = []
    _models(Policy, "", models)
    lines = [BEGIN, ""]
    for path, model in models:
        title = path or "top level"
        lines.append(f"### `{title}`")
        lines.append("")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and path:
            lines.extend([" ".join(line.strip() for line in doc if line.strip()), ""])
        lines.append("| key | type | default | meaning |")
        lines.append("| --- | --- | --- | --- |")
        props = model.model_json_schema()["properties"]
        for name, field in model.model_fields.items():
            meaning = (field.description or "").replace("|", "\\|")
            type_text = _schema_type(props[name]).replace("|", "\\|")
            lines.append(f"| `{name}` | {type_text} | {_default(field)} | {meaning} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def update_file(path: Path) -> bool:
    """Replace the generated block in `path`. Returns True if the file changed."""
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render_reference() + text[end:]
    if new != text:
        path.write_text(new)
        return True
    return False


if __name__ == "__main__":
    changed = update_file(Path("docs/configuration.md"))
    print("docs/configuration.md updated" if changed else "docs/configuration.md is up to date")
