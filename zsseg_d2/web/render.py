"""The page's HTML pieces: the message box and the legend (names escaped)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from .session import LegendRow


def status_html(message: str, error: bool = False) -> str:
    css_class = "zs-error" if error else "zs-ok"
    prefix = "Error: " if error else ""
    return f'<div class="{css_class}">{html.escape(prefix + message)}</div>'


def legend_html(rows: Sequence[LegendRow]) -> str:
    """A table: colour swatch, class id, name (marked when unseen), share of the image."""
    lines = ["<table><tr><th></th><th>id</th><th>class</th><th>area</th></tr>"]
    for row in rows:
        color = "#{:02x}{:02x}{:02x}".format(*row.color)
        name = html.escape(row.name) + (" <em>(unseen)</em>" if row.unseen else "")
        lines.append(
            f'<tr class="zs-class" data-class="{html.escape(row.name, quote=True)}">'
            f'<td><span class="zs-swatch" style="background:{color}"></span></td>'
            f"<td>{row.class_id}</td><td>{name}</td><td>{100 * row.share:.1f}%</td></tr>"
        )
    return "\n".join([*lines, "</table>"])
