"""Plain-text tables for the CLI (replay, demo): one renderer so every table looks the same."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

GAP = 2  # spaces between two columns
MIN_COLUMN = 6  # a fitted column is never narrower (nor narrower than its header)


def clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def fit_widths(widths: Sequence[int], available: int, minimums: Sequence[int]) -> list[int]:
    """Column widths whose row (with `GAP` between columns) fits in `available` characters: the widest columns are
    cut first, to a common width, and none below its minimum (a column narrower than its minimum keeps its width).
    When even the minimums do not fit, the minimums."""
    floors = [min(w, m) for w, m in zip(widths, minimums, strict=True)]
    budget = available - GAP * max(len(widths) - 1, 0)
    if sum(widths) <= budget:
        return list(widths)
    if sum(floors) >= budget:
        return floors

    def total(cap: int) -> int:
        return sum(max(f, min(w, cap)) for f, w in zip(floors, widths, strict=True))

    low, high = 0, max(widths)  # the widest cap that fits: total(low) <= budget < total(high + 1)
    while low < high:
        middle = (low + high + 1) // 2
        if total(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    fitted = [max(f, min(w, low)) for f, w in zip(floors, widths, strict=True)]
    spare = budget - sum(fitted)
    for i, w in enumerate(widths):  # what the cap leaves over goes to the cut columns, left to right
        if spare and fitted[i] < w:
            fitted[i] += 1
            spare -= 1
    return fitted


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    empty: str = "(none)",
    *,
    max_width: int | None = None,
    min_width: int = MIN_COLUMN,
) -> str:
    """The table; with `max_width` (a terminal's), cells are clipped so that lines fit in it (`fit_widths`); headers
    are never clipped."""
    return "\n".join(table_lines(header, rows, empty, max_width=max_width, min_width=min_width))


def table_lines(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    empty: str = "(none)",
    *,
    max_width: int | None = None,
    min_width: int = MIN_COLUMN,
) -> Iterator[str]:
    """`render_table`, line by line (a long table is never one string)."""
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]
    natural = widths
    if max_width:
        widths = fit_widths(widths, max_width, [max(min_width, len(str(h))) for h in header])

    def line(row: Sequence[str]) -> str:
        cells = row if widths == natural else [clip(str(cell), w) for cell, w in zip(row, widths, strict=True)]
        return (" " * GAP).join(str(cell).ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    yield line(header)
    yield line(["-" * w for w in widths])
    for row in rows:
        yield line(row)
    if not rows:
        yield empty
