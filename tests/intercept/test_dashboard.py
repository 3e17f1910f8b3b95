"""The supervisors' operation dashboard: linked from the admin index, scoped like the case,
server-rendered with SVG charts of the weekly series and the highest-priority open leads. A
headless Chromium renders it and the bars are really painted."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from intercept import charts, services
from intercept.events import InterceptAction
from tests.conftest import IS_CI
from tests.intercept.conftest import ad, conversation, make_operation

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/intercept/operationdashboard/"
BAR_BLUE = (0x1F, 0x77, 0xB4)


def admin_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operation(world) -> Any:
    """An operation with ads on two sites and buyers over three recent weeks."""
    op = make_operation(world)
    source = services.ingest_source_create(actor=None, name="nightfall-bot", case=op).source
    now = timezone.now()
    services.ads_ingest(
        source=source,
        items=[
            ad(
                f"a{i}",
                site=("nightlist.example", "cityvibe.example")[i % 2],
                posted_at=(now - timedelta(days=i)).isoformat(),
            )
            for i in range(21)
        ],
    )
    services.conversations_ingest(
        source=source,
        items=[
            conversation(
                f"c{i}",
                base=now - timedelta(days=2 + 3 * i),
                phone=f"+1305555{100 + i % 5:04d}",
                signals={"minor_age_mentioned": i == 0, "payment_discussed": i % 2 == 0},
                deterrence_sent_at=(now - timedelta(days=2 + 3 * i)).isoformat(),
            )
            for i in range(7)
        ],
    )
    return op


def test_the_admin_index_links_the_dashboard_for_supervisors_only(operation, world):
    assert DASHBOARD.encode() in admin_client(world.supervisor).get("/admin/").content
    assert DASHBOARD.encode() not in admin_client(world.auditor).get("/admin/").content
    assert admin_client(world.auditor).get(DASHBOARD).status_code == 403


def test_the_dashboard_shows_the_operations_numbers_charts_and_top_leads(operation, world):
    response = admin_client(world.supervisor).get(DASHBOARD, {"case": str(operation.pk)})
    assert response.status_code == 200
    html = response.content.decode()
    assert operation.number in html
    assert re.search(r'id="tile-unique">5<', html) and re.search(r'id="tile-repeat">2<', html)
    assert re.search(r'id="tile-deterrence">7<', html)
    assert html.count('<rect class="bar"') >= 4
    assert '<svg class="chart chart-weekly"' in html and '<svg class="chart chart-stacked"' in html
    leads = re.findall(r'<td>(\d+)</td>\s*<td><a href="/admin/cases/lead/', html)
    assert leads and [int(p) for p in leads] == sorted((int(p) for p in leads), reverse=True)
    assert int(leads[0]) >= 50, "the buyer who mentioned a minor is on top"
    viewed = AuditEvent.objects.get(action=InterceptAction.ANALYTICS_VIEWED)
    assert (viewed.actor, viewed.case_id, viewed.changes["via"]) == (world.supervisor, operation.pk, "admin")


def test_the_dashboard_shows_only_operations_in_scope(operation, other_op, world):
    html = admin_client(world.outsider_supervisor).get(DASHBOARD, {"case": str(operation.pk)}).content.decode()
    assert operation.number not in html
    assert other_op.number in html
    assert not AuditEvent.objects.filter(action=InterceptAction.ANALYTICS_VIEWED, case_id=operation.pk).exists()


def test_the_weekly_chart_draws_one_bar_per_week_with_data_scaled_to_the_axis():
    svg = charts.weekly_bars("Conversations", [("2026-03-02", 4), ("2026-03-09", 0), ("2026-03-16", 10)])
    heights = [float(h) for h in re.findall(r'<rect class="bar" [^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 2
    assert heights[1] == pytest.approx(heights[0] * 10 / 4)
    assert "week of 2026-03-16: 10" in svg


# ---------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    return next(
        (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
    )


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB(A) rows of an 8-bit RGB or RGBA PNG (the filters undone)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, prior = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prior[x], prior[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prior = line
    return width, bpp, rows


def test_chromium_renders_the_dashboard_and_paints_the_charts(operation, world, tmp_path):
    browser = _chromium()
    if browser is None:
        if IS_CI:
            pytest.fail("chromium is required under CI (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    page = tmp_path / "dashboard.html"
    page.write_bytes(admin_client(world.supervisor).get(DASHBOARD, {"case": str(operation.pk)}).content)
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,4000"]
    dom = subprocess.run(  # noqa: S603 - our own browser on our own file
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    assert dom.count("<svg") >= 2
    assert len(re.findall(r'<rect class="bar"', dom)) >= 4
    shot = tmp_path / "dashboard.png"
    subprocess.run(  # noqa: S603 - our own browser on our own file
        [*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=90, check=True
    )
    width, bpp, rows = _png_pixels(Path(shot).read_bytes())
    blue = sum(
        1
        for row in rows
        for x in range(0, width * bpp, bpp)
        if all(abs(row[x + i] - BAR_BLUE[i]) <= 8 for i in range(3))
    )
    assert blue > 200, f"only {blue} bar-coloured pixels were painted"
