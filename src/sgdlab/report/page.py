"""HTML building blocks for self-contained reports: every string goes through `esc`, images
are embedded as base64 PNG, the stylesheet is inline, and the page loads nothing from anywhere
(a Content-Security-Policy forbids scripts and any fetch besides embedded images)."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any, Iterable

from ..errors import DamagedFile

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg: #ffffff; --soft: #f4f6f8;
        --holds: #137333; --fails: #b3261e; --na: #8a6100; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 28px 60px; }
h1 { font-size: 24px; margin: 6px 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-top: 10px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 6px 0; }
.muted, caption, figcaption { color: var(--muted); }
.lead { font-size: 15.5px; max-width: 980px; }
.note { background: var(--soft); border-left: 4px solid #9aa5b1; padding: 8px 12px; margin: 10px 0;
        max-width: 1100px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
            font-size: 13px; }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; }
pre { background: var(--soft); padding: 10px 12px; overflow-x: auto; border-radius: 4px;
      max-height: 420px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
caption { text-align: left; padding: 2px 0 6px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.claims { width: 100%; }
table.claims td.statement { min-width: 320px; }
table.claims td.key { font-variant-numeric: tabular-nums; min-width: 150px; }
table.claims td.meaning { color: #333c46; min-width: 220px; }
.verdict { display: inline-block; min-width: 104px; padding: 1px 8px; border-radius: 10px; color: #fff;
           font-weight: 600; font-size: 12.5px; text-align: center; white-space: nowrap; }
.v-holds { background: var(--holds); } .v-fails { background: var(--fails); }
.v-not-applicable { background: var(--na); }
.v-completed { background: var(--holds); } .v-failed, .v-diverged { background: var(--fails); }
.v-interrupted, .v-running, .v-pending { background: var(--na); }
.counts span { margin-right: 10px; white-space: nowrap; }
.id { font-weight: 600; }
details { margin-top: 3px; }
details summary { cursor: pointer; color: var(--muted); font-size: 13px; }
details pre { max-height: 300px; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; flex: 0 1 calc(50% - 9px); min-width: 420px; }
figure.wide { flex-basis: 100%; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { font-size: 13px; padding-top: 3px; }
table.findings { width: 100%; }
.findings td { font-size: 13.5px; }
.findings td.finding { width: 22%; } .findings td.claimed { width: 30%; }
.findings td.measured { width: 28%; } .findings td.commands { width: 20%; }
.findings .paper { color: var(--muted); font-size: 12.5px; }
.findings .cmd code { white-space: normal; overflow-wrap: anywhere; }
.claimline { font-size: 13px; margin: 1px 0; }
.mark { font-weight: 700; display: inline-block; width: 1.1em; }
.m-holds { color: var(--holds); } .m-fails { color: var(--fails); } .m-not-applicable { color: var(--na); }
.cmd { font-size: 12px; margin: 1px 0 4px; }
a { color: #0b57d0; }
"""


def esc(value: Any) -> str:
    """Any value as HTML text (quotes escaped too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any) -> str:
    """A number in 4–5 significant digits; anything else as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def verdict_badge(verdict: str) -> str:
    """A coloured badge for a claim verdict or run status (styled by its `v-…` class)."""
    return f'<span class="verdict v-{esc(verdict)}">{esc(verdict)}</span>'


def table(
    headers: list[str],
    rows: Iterable[list[str]],
    *,
    cls: str = "",
    caption: str = "",
    numeric: Iterable[int] = (),
    columns: dict[int, str] | None = None,
) -> str:
    """`rows` hold cells that are already HTML (escape text with `esc`); `numeric` columns are
    right-aligned, `columns` gives other columns a CSS class."""
    classes = dict(columns or {})
    for i in numeric:
        classes[i] = "num"
    attr = {i: f' class="{esc(c)}"' for i, c in classes.items()}
    head = "".join(f"<th{attr.get(i, '')}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{attr.get(i, '')}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{caption}</caption>" if caption else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<table{klass}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(summary: str, body_html: str) -> str:
    """A folded section: `summary` (text, escaped) opens `body_html`."""
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def pre(text: str) -> str:
    """Preformatted text, escaped."""
    return f"<pre>{esc(text)}</pre>"


def code(text: str) -> str:
    """Inline code, escaped."""
    return f"<code>{esc(text)}</code>"


def as_json(value: Any, max_items: int = 12) -> str:
    """Evidence as indented JSON, long lists cut to their first `max_items` entries."""
    return json.dumps(_cut(value, max_items), indent=2, ensure_ascii=False, default=str)


def _cut(value: Any, n: int) -> Any:
    if isinstance(value, dict):
        return {k: _cut(v, n) for k, v in value.items()}
    if isinstance(value, list):
        head = [_cut(v, n) for v in value[:n]]
        return head + [f"… {len(value) - n} more"] if len(value) > n else head
    return value


def figure(png: Path, page: Path, caption: str = "") -> str:
    """A PNG embedded as base64, with a link to the SVG beside it when there is one, relative
    to `page`, the directory of the report.html the figure is shown in."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    svg = png.with_suffix(".svg")
    links = f' · <a href="{esc(relative(svg, page))}">SVG</a>' if svg.is_file() else ""
    label = caption or png.stem
    width, height = png_size(png)
    wide = ' class="wide"' if width >= 2.2 * height else ""
    return (
        f'<figure{wide}><img alt="{esc(label)}" width="{width}" height="{height}" '
        f'src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(label)}{links}</figcaption></figure>"
    )


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR header."""
    with open(png, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        raise DamagedFile(png, "not a PNG image", "the command that drew it draws it again")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def figures(pngs: list[Path], page: Path) -> str:
    """The non-empty PNGs among `pngs`, embedded side by side (a note when there are none),
    their SVG links relative to `page` (the directory of the report.html they are shown in)."""
    pngs = [p for p in pngs if p.is_file() and p.stat().st_size > 0]
    if not pngs:
        return '<p class="muted">No figures.</p>'
    return '<div class="figures">' + "".join(figure(p, page) for p in pngs) + "</div>"


def relative(path: Path, base: Path) -> str:
    """`path` as a link from a page in directory `base`: relative when it lies under `base`,
    else an absolute file:// URI."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def document(title: str, body: str) -> str:
    """The whole self-contained HTML page: CSP, inline stylesheet, `body` in <main>."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
