"""CSV of the analytics summary (`?format=csv`): one row per number, long format, so a
spreadsheet can pivot it: section, week, site, status, value."""

from __future__ import annotations

import csv
import io
from typing import Any

from rest_framework.renderers import BaseRenderer

CSV_HEADER = ("section", "week", "site", "status", "value")


def summary_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [
        ("ads", row["week"], row["site"], "", row["count"]) for row in data["ads_per_site_per_week"]
    ]
    rows += [("conversations", row["week"], "", "", row["count"]) for row in data["conversations_per_week"]]
    rows += [
        ("unique_buyers", "", "", "", data["buyers"]["unique"]),
        ("repeat_buyers", "", "", "", data["buyers"]["repeat"]),
        ("deterrence_sent", "", "", "", data["deterrence_sent"]),
    ]
    rows += [("leads", "", "", status, count) for status, count in data["leads_by_status"].items()]
    rows += [("handoffs", "", "", status, count) for status, count in data["handoff_outcomes"].items()]
    return rows


class AnalyticsCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if isinstance(data, dict) and "ads_per_site_per_week" in data:
            writer.writerow(CSV_HEADER)
            writer.writerows(summary_rows(data))
        elif isinstance(data, dict):
            writer.writerow(("field", "error"))
            for key, value in data.items():
                for message in value if isinstance(value, list) else [value]:
                    writer.writerow((key, message))
        return out.getvalue().encode()
