"""The plan report's charts as inline SVG: tickets per tier before and after (grouped bars), and
tickets per tier change (horizontal bars), each labelled with its counts.

Every bar is a `<g>` carrying its numbers (`data-tier`, `data-series`, `data-count`; `data-from`,
`data-to`, `data-count`), a `<title>` (the tooltip a browser shows), the bar and its count as
text. Heights and widths are proportional to the counts (the longest bar is the largest count).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tiering.plan import NO_TIER
from webhooks.plan.markup import Html, tag
from webhooks.plan.schema import Transition

#: Okabe-Ito blue and vermillion: told apart with any colour vision, each at least 3:1 against
#: white (WCAG 2.1, 1.4.11 non-text contrast); the legend and the count on every bar say the same.
BEFORE_COLOUR = "#0072B2"
AFTER_COLOUR = "#D55E00"
TRANSITION_COLOUR = "#4B5563"

_DIGITS = re.compile(r"(\d+)")


def format_count(value: int) -> str:
    """A count as the page shows it: digits grouped by thousands (12,345)."""
    return f"{value:,}"


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _DIGITS.split(text) if p)


def tier_order(*distributions: Mapping[str, int]) -> list[str]:
    """The tiers of the distributions in reading order: tiers with their numbers compared as
    numbers (L2 before L10), then routes (`route:<name>`), then "(none)". The document sorts its
    keys as text, and carries no policy's tier order."""
    names = {name for counts in distributions for name in counts}
    return sorted(names, key=lambda n: (2 if n == NO_TIER else 1 if n.startswith("route:")
                                        else 0, _natural(n)))


def tier_chart(before: Mapping[str, int], after: Mapping[str, int]) -> Html:
    """Grouped bars: for each tier the tickets in it under the current and the proposed policy."""
    tiers = tier_order(before, after)
    if not tiers:
        return tag("p", {"class": "empty"}, "The plan read no ticket.")
    bar_w, pair_gap, left, top, plot_h, bottom = 34, 4, 16, 26, 220, 44
    group_w = 2 * bar_w + pair_gap
    # Room under each group for its name (about 7.5 px a character at 13 px).
    group_gap = max(30, int(7.5 * max(len(t) for t in tiers)) - group_w + 12)
    width = left * 2 + len(tiers) * group_w + (len(tiers) - 1) * group_gap
    height = top + plot_h + bottom
    peak = max([1, *before.values(), *after.values()])
    parts = [
        tag("title", {"id": "tier-chart-title"}, "Tickets per tier before and after"),
        tag("line", {"x1": left - 6, "x2": width - left + 6, "y1": top + plot_h,
                     "y2": top + plot_h, "class": "axis"}),
    ]
    for index, tier in enumerate(tiers):
        x0 = left + index * (group_w + group_gap)
        for offset, series, counts, colour in (
            (0, "before", before, BEFORE_COLOUR),
            (bar_w + pair_gap, "after", after, AFTER_COLOUR),
        ):
            count = counts.get(tier, 0)
            h = plot_h * count / peak
            x, y = x0 + offset, top + plot_h - h
            parts.append(tag(
                "g", {"class": "bar", "data-tier": tier, "data-series": series,
                      "data-count": count},
                tag("title", None, f"{tier}, {series}: {format_count(count)} ticket(s)"),
                tag("rect", {"x": x, "y": f"{y:.2f}", "width": bar_w, "height": f"{h:.2f}",
                             "fill": colour}),
                tag("text", {"class": "count", "x": x + bar_w / 2, "y": f"{y - 6:.2f}",
                             "text-anchor": "middle"}, format_count(count)),
            ))
        parts.append(tag("text", {"class": "tier-label", "data-tier": tier,
                                  "x": x0 + group_w / 2, "y": top + plot_h + 22,
                                  "text-anchor": "middle"}, tier))
    return tag("svg", {"class": "chart", "id": "tier-chart", "role": "img",
                       "aria-labelledby": "tier-chart-title", "width": width, "height": height,
                       "viewBox": f"0 0 {width} {height}"}, *parts)


def transition_chart(transitions: Sequence[Transition]) -> Html:
    """Horizontal bars, largest first: the tickets moving from one tier to another."""
    if not transitions:
        return tag("p", {"class": "empty"}, "No ticket changes tier.")
    rows = sorted(transitions, key=lambda t: -t.count)
    labels = [f"{t.from_} → {t.to}" for t in rows]
    label_w = max(90, 8 * max(len(label) for label in labels) + 16)
    plot_w, row_h, top, count_w = 420, 30, 8, 70
    width, height = label_w + plot_w + count_w, top * 2 + row_h * len(rows)
    peak = max(1, *(t.count for t in rows))
    parts = [tag("title", {"id": "transition-chart-title"},
                 "Tickets per tier change, before → after")]
    for index, (transition, label) in enumerate(zip(rows, labels, strict=True)):
        y = top + index * row_h
        w = plot_w * transition.count / peak
        parts.append(tag(
            "g", {"class": "transition", "data-from": transition.from_,
                  "data-to": transition.to, "data-count": transition.count},
            tag("title", None, f"{label}: {format_count(transition.count)} ticket(s)"),
            tag("text", {"class": "transition-label", "x": label_w - 10, "y": y + row_h / 2 + 5,
                         "text-anchor": "end"}, label),
            tag("rect", {"x": label_w, "y": y + 4, "width": f"{w:.2f}", "height": row_h - 8,
                         "fill": TRANSITION_COLOUR}),
            tag("text", {"class": "count", "x": f"{label_w + w + 6:.2f}",
                         "y": y + row_h / 2 + 5}, format_count(transition.count)),
        ))
    return tag("svg", {"class": "chart", "id": "transition-chart", "role": "img",
                       "aria-labelledby": "transition-chart-title", "width": width,
                       "height": height, "viewBox": f"0 0 {width} {height}"}, *parts)
