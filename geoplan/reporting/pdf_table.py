"""Tables on the PDF's pages that fit their box: column widths from the content, long cells wrapped, a smaller
font when a table is still too wide or too tall.

matplotlib's own `Axes.table` gives every column a fixed share and never wraps, so a long town, rule or
indicator name ran past its cell and, in the last column, past the page's right margin. Here every text is
measured with the font the page is drawn in (a renderer at 72 dpi, so widths are points), the columns share the
box's width by what they hold, and each row is as tall as its longest wrapped cell. Rows are drawn as plain
rectangles and one text per line, all in figure coordinates, so nothing can spill out of the box.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle

__all__ = ["TableLayout", "draw_table", "layout_table", "text_width", "wrap_text"]

PAD_X = 2.5
"""Points between a cell's border and its text, left and right."""
PAD_Y = 1.6
LINE = 1.25
"""Line height as a multiple of the font size."""
MIN_FONT = 5.0
FONT_STEP = 0.5
MIN_COLUMN_EMS = 3.0
"""A column is never squeezed below three full-width characters (plus padding)."""
EDGE, HEADER_BG = "#cbd2d9", "#e4ebf2"
_TOKENS = re.compile(r"[A-Za-z0-9_.,:%+\-−/()（）]+|\s+|.", re.DOTALL)
"""Latin words and numbers stay whole where they can; any other character (CJK) may start a new line."""


@lru_cache(maxsize=1)
def _renderer() -> RendererAgg:
    return RendererAgg(10, 10, 72)


@lru_cache(maxsize=16384)
def _char_width(char: str, size: float, family: tuple[str, ...]) -> float:
    prop = FontProperties(family=list(family), size=size)
    width, _, _ = _renderer().get_text_width_height_descent(char, prop, ismath=False)
    return float(width)


def text_width(text: str, size: float) -> float:
    """The width of one line in points, in the page's current sans-serif font (measured per character, cached)."""
    from matplotlib import rcParams

    family = tuple(rcParams["font.sans-serif"])
    return sum(_char_width(c, size, family) for c in text)


def wrap_text(text: str, width: float, size: float) -> list[str]:
    """`text` in lines no wider than `width` points (its own line breaks kept); a Latin word longer than a line
    is broken between characters."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _TOKENS.findall(paragraph):
            if text_width(line + token, size) <= width:
                line += token
                continue
            if line.strip():
                out.append(line.rstrip())
            line = "" if token.isspace() else token
            while text_width(line, size) > width and len(line) > 1:  # a token wider than the column
                cut = len(line) - 1
                while cut > 1 and text_width(line[:cut], size) > width:
                    cut -= 1
                out.append(line[:cut])
                line = line[cut:]
        out.append(line.rstrip())
    return out


@dataclass(frozen=True)
class TableLayout:
    """A table fitted to a box: the font, each column's width and each row's lines and height (points)."""

    font: float
    widths: tuple[float, ...]
    lines: tuple[tuple[tuple[str, ...], ...], ...]
    """Per row (the header first), per cell, its lines."""
    heights: tuple[float, ...]

    @property
    def width(self) -> float:
        return sum(self.widths)

    @property
    def height(self) -> float:
        return sum(self.heights)


def _column_widths(natural: list[float], floor: list[float], available: float) -> list[float] | None:
    """Widths summing to `available`: the natural widths spread out, or the widest capped at one level (the
    narrow columns keep their width, the long ones wrap); None when even the floors do not fit."""
    if sum(floor) > available:
        return None
    if sum(natural) <= available:
        spare = available - sum(natural)
        return [w + spare * w / sum(natural) for w in natural]
    low, high = 0.0, max(natural)
    for _ in range(60):  # bisect the cap: the widths' sum grows with it
        cap = (low + high) / 2
        if sum(max(f, min(n, cap)) for n, f in zip(natural, floor, strict=True)) > available:
            high = cap
        else:
            low = cap
    widths = [max(f, min(n, low)) for n, f in zip(natural, floor, strict=True)]
    spare = available - sum(widths)
    return [w + spare / len(widths) for w in widths]


def layout_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, width: float, height: float, font: float = 7.5
) -> TableLayout:
    """Fit the table into width × height points, lowering the font (down to MIN_FONT) until it does."""
    cells = [list(header), *(list(r) for r in rows)]
    size = font
    while True:
        natural = [
            max(max(text_width(line, size) for line in str(row[i]).split("\n")) for row in cells) + 2 * PAD_X
            for i in range(len(header))
        ]
        floor = [min(n, MIN_COLUMN_EMS * size + 2 * PAD_X) for n in natural]
        widths = _column_widths(natural, floor, width)
        if widths is not None:
            lines = tuple(
                tuple(tuple(wrap_text(str(text), w - 2 * PAD_X, size)) for text, w in zip(row, widths, strict=True))
                for row in cells
            )
            heights = tuple(max(len(c) for c in row) * size * LINE + 2 * PAD_Y for row in lines)
            if sum(heights) <= height or size <= MIN_FONT:
                return TableLayout(size, tuple(widths), lines, heights)
        if size <= MIN_FONT:  # too many columns for the page even at the smallest font: squeeze evenly
            widths = [width / len(header)] * len(header)
            lines = tuple(
                tuple(tuple(wrap_text(str(text), w - 2 * PAD_X, size)) for text, w in zip(row, widths, strict=True))
                for row in cells
            )
            heights = tuple(max(len(c) for c in row) * size * LINE + 2 * PAD_Y for row in lines)
            return TableLayout(size, tuple(widths), lines, heights)
        size -= FONT_STEP


def draw_table(
    figure: Figure,
    box: tuple[float, float, float, float],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    font: float = 7.5,
    colours: Sequence[Sequence[str]] | None = None,
) -> TableLayout | None:
    """Draw the table at the top of `box` (left, bottom, width, height as figure fractions); None and a note
    "（无）" when there are no rows."""
    left, bottom, box_width, box_height = box
    page_w, page_h = (float(v) * 72.0 for v in figure.get_size_inches())
    if not rows:
        figure.text(left, bottom + box_height, "（无）", fontsize=9, va="top")
        return None
    layout = layout_table(header, rows, width=box_width * page_w, height=box_height * page_h, font=font)
    top = (bottom + box_height) * page_h
    for r, (row_lines, row_height) in enumerate(zip(layout.lines, layout.heights, strict=True)):
        x = left * page_w
        for c, (cell, col_width) in enumerate(zip(row_lines, layout.widths, strict=True)):
            fill = HEADER_BG if r == 0 else (colours[r - 1][c] if colours else "#ffffff")
            figure.add_artist(
                Rectangle(
                    (x / page_w, (top - row_height) / page_h),
                    col_width / page_w,
                    row_height / page_h,
                    transform=figure.transFigure,
                    facecolor=fill,
                    edgecolor=EDGE,
                    linewidth=0.4,
                )
            )
            for n, line in enumerate(cell):
                y = top - PAD_Y - (n + 0.5) * layout.font * LINE  # the middle of the line's slot
                figure.text((x + PAD_X) / page_w, y / page_h, line, fontsize=layout.font, va="center", color="#1f2933")
            x += col_width
        top -= row_height
    return layout
