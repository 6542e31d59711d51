"""The dashboards' charts: Vega-Lite specifications rendered to SVG on the server.

The rendering engine (`vl-convert-python`) runs in this process and is allowed no base URL, so
a chart never loads anything; the page carries the SVG itself. Each chart has one unit (its
axis title names it), a temporal axis for daily figures (a day with no published figure
leaves a gap), ticks, gridlines and a legend; suppressed figures are drawn as marks of their
own on the zero line and named in the legend. Every data mark carries a `<title>` with its
figure, which browsers show as a tooltip.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel.numbers import get_decimal_symbol, get_group_symbol

from services.i18n import parse_locale

WIDTH = 620
# d3's time-format locales by language, for tags it has no locale of its own for.
_TIME_LOCALES = {"de": "de-DE", "it": "it-IT", "nl": "nl-NL", "en": "en-US", "fr": "fr-FR"}
COLOURS = ["#1f6f9f", "#c0562b", "#2e8b57", "#7a4fa0", "#b08a1e"]
SUPPRESSED_COLOUR = "#9aa5ad"


@dataclass(frozen=True)
class Point:
    """One figure of a chart: its x (a day or a label), its series, and its value in the
    chart's unit (None: suppressed)."""

    x: str
    series: str
    value: float | None
    shown: str  # the figure as written in the page's language, with its unit


def _format_locale(tag: str) -> dict[str, Any]:
    locale = parse_locale(tag)
    return {
        "decimal": get_decimal_symbol(locale),
        "thousands": get_group_symbol(locale),
        "grouping": [3],
        "currency": ["", ""],
    }


def _time_locale(tag: str) -> Any:
    language = parse_locale(tag).language
    return _TIME_LOCALES.get(language, "en-US")


_MARK = re.compile(r'<(path|rect|line|text|circle)([^>]*?)aria-label="([^"]*)"([^>]*?)/>')


def _with_titles(svg: str) -> str:
    """Each data mark's accessible label (Vega writes one per item) as its `<title>`: the
    tooltip of an SVG element."""

    def titled(m: re.Match[str]) -> str:
        name, before, label, after = m.groups()
        if 'role="graphics-symbol"' not in before + after:
            return m.group(0)
        return f'<{name}{before}aria-label="{label}"{after}><title>{label}</title></{name}>'

    return _MARK.sub(titled, svg)


@lru_cache(maxsize=512)
def _render(spec_json: str, tag: str) -> str:
    import vl_convert

    svg = vl_convert.vegalite_to_svg(
        json.loads(spec_json),
        format_locale=_format_locale(tag),
        time_format_locale=_time_locale(tag),
        allowed_base_urls=[],
    )
    return _with_titles(svg)


def warm_up() -> None:
    """Start the rendering engine (a few seconds, once per process) before the first page asks."""

    def start() -> None:
        _render(json.dumps({"mark": "point", "data": {"values": [{}]}}), "en")

    threading.Thread(target=start, name="chart-engine", daemon=True).start()


def render(spec: dict[str, Any], tag: str, name: str, points: int) -> str:
    """The chart as inline SVG, wrapped in a figure that names it and counts its published
    figures (`data-points`)."""
    svg = _render(json.dumps(spec, sort_keys=True), tag)
    return f'<figure class="chart" data-chart="{html.escape(name)}" data-points="{points}">{svg}</figure>'


def _legend(title: str) -> dict[str, Any]:
    return {"title": title, "orient": "bottom", "direction": "horizontal"}


def _every_day(days: list[str]) -> list[str]:
    if not days:
        return []
    first, last = dt.date.fromisoformat(min(days)), dt.date.fromisoformat(max(days))
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def daily(
    points: list[Point],
    *,
    x_title: str,
    y_title: str,
    y_format: str,
    series_title: str,
    suppressed_label: str,
    bars: bool = False,
) -> dict[str, Any]:
    """Daily figures of one unit on a time axis: a line (or bars) per series; a day without a
    figure breaks the line, a suppressed figure is a grey cross on the zero line."""
    series = list(dict.fromkeys(p.series for p in points))
    shown = {(p.x, p.series): p for p in points}
    rows = []
    for d in _every_day([p.x for p in points]):
        for s in series:
            p = shown.get((d, s))
            rows.append(
                {
                    "day": d,
                    "series": s,
                    "value": p.value if p is not None else None,
                    "label": p.shown if p is not None else "",
                }
            )
    marks = [
        {"day": p.x, "series": p.series, "status": suppressed_label, "label": f"{p.series}: {p.shown}"}
        for p in points
        if p.value is None
    ]
    span = len(_every_day([p.x for p in points]))
    x = {
        "field": "day",
        "type": "temporal",
        "timeUnit": "utcyearmonthdate",
        "title": x_title,
        "axis": {
            "format": "%e %b",
            "grid": True,
            "tickCount": {"interval": "day", "step": 1 if span <= 14 else 7},
        },
    }
    y = {
        "field": "value",
        "type": "quantitative",
        "title": y_title,
        "axis": {"format": y_format, "grid": True},
    }
    colour = {
        "field": "series",
        "type": "nominal",
        "title": series_title,
        "sort": series,
        "scale": {"domain": series, "range": COLOURS[: len(series)]},
        "legend": _legend(series_title),
    }
    tooltip = [
        {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": x_title},
        {"field": "series", "type": "nominal", "title": series_title},
        {"field": "label", "type": "nominal", "title": y_title},
    ]
    mark: dict[str, Any] = (
        {"type": "bar", "tooltip": True, "width": {"band": 0.8}}
        if bars
        else {
            "type": "line",
            "point": {"size": 28},
            "invalid": "break-paths-filter-domains",
            "tooltip": True,
            "strokeWidth": 2,
        }
    )
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": rows},
            "mark": mark,
            "encoding": {"x": x, "y": y, "color": colour, "tooltip": tooltip},
        }
    ]
    if bars and len(series) > 1:
        layers[0]["encoding"]["xOffset"] = {"field": "series", "sort": series}
    if marks:
        layers.append(_suppressed_layer(marks, x, suppressed_label))
    return {
        "width": WIDTH,
        "height": 200,
        "layer": layers,
        "resolve": {"scale": {"color": "independent"}},
        "config": {"font": "sans-serif", "legend": {"labelLimit": 320}},
    }


def _suppressed_layer(marks: list[dict[str, Any]], x: dict[str, Any], label: str) -> dict[str, Any]:
    return {
        "data": {"values": marks},
        "mark": {"type": "point", "shape": "cross", "size": 60, "filled": True, "tooltip": True},
        "encoding": {
            "x": x,
            "y": {"datum": 0},
            "color": {
                "field": "status",
                "type": "nominal",
                "scale": {"domain": [label], "range": [SUPPRESSED_COLOUR]},
                "legend": _legend(""),
            },
            "tooltip": [{"field": "label", "type": "nominal", "title": label}],
        },
    }


def bars(
    points: list[Point],
    *,
    x_title: str,
    x_format: str,
    noised_label: str,
    suppressed_label: str,
    label_title: str,
) -> dict[str, Any]:
    """Horizontal bars of one unit, one per label; a suppressed figure is a grey stub marked in
    the legend, and every bar is written out beside it."""
    order = [p.x for p in points]
    rows = [
        {
            "label": p.x,
            "value": p.value if p.value is not None else 0,
            "status": noised_label if p.value is not None else suppressed_label,
            "shown": p.shown,
        }
        for p in points
    ]
    y = {
        "field": "label",
        "type": "nominal",
        "sort": order,
        "title": label_title,
        "axis": {"labelLimit": 220},
    }
    return {
        "width": WIDTH - 240,
        # Room on the right for the figure written beside the longest bar.
        "padding": {"left": 5, "top": 5, "bottom": 5, "right": 150},
        "height": {"step": 24},
        "data": {"values": rows},
        "encoding": {"y": y},
        "layer": [
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {
                        "field": "value",
                        "type": "quantitative",
                        "title": x_title,
                        "axis": {"format": x_format, "grid": True},
                    },
                    "color": {
                        "field": "status",
                        "type": "nominal",
                        "scale": {
                            "domain": [noised_label, suppressed_label],
                            "range": [COLOURS[0], SUPPRESSED_COLOUR],
                        },
                        "legend": _legend(""),
                    },
                    "tooltip": [
                        {"field": "label", "type": "nominal", "title": label_title},
                        {"field": "shown", "type": "nominal", "title": x_title},
                    ],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
                "encoding": {
                    "x": {"field": "value", "type": "quantitative"},
                    "text": {"field": "shown", "type": "nominal"},
                },
            },
        ],
        "config": {"font": "sans-serif", "legend": {"labelLimit": 320}},
    }


def d3_format(decimals: int) -> str:
    """A d3 number format with grouping and `decimals` places."""
    return f",.{decimals}f"
