"""Plain-text tables for the CLI (replay, demo): one renderer so every table looks the same."""

from __future__ import annotations

from collections.abc import Sequence


def clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "(none)") -> str:
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    if not rows:
        out.append(empty)
    return "\n".join(out)
