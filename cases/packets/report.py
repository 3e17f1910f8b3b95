"""report.pdf: the human-readable packet, every page Bates-stamped.

Laid out in two steps so the page count is known before anything is drawn: `Layout` places
text on pages (measuring with the standard fonts' metrics), then `render` draws the pages with
reportlab's canvas in invariant mode (no creation date or random document id, uncompressed
page streams), so the same data always gives the same bytes. Text is written as literal PDF
text operators: what drawString writes, without its per-call cost (a thousand-item evidence
index is tens of thousands of strings).

Text that depends on the page count (the evidence's Bates numbers, the contents' page
numbers, "page n of N") stays a callable until drawing; it is never wrapped, so it cannot
change the layout. Only the standard PDF fonts are used (nothing embedded); characters they
cannot show print as "?" (case.json has the exact text). The text is extractable (pdftotext,
pypdf).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reportlab.lib.pagesizes import letter
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

from cases.packets.content import PacketData, person_label

Text = str | Callable[[], str]

PAGE_WIDTH, PAGE_HEIGHT = letter
LEFT = 54.0
RIGHT = PAGE_WIDTH - 54.0
WIDTH = RIGHT - LEFT
TOP = PAGE_HEIGHT - 64.0
BOTTOM = 64.0
BODY = ("Helvetica", 9.5, 12.5)
SMALL = ("Helvetica", 8.0, 10.0)
BOLD = "Helvetica-Bold"


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_NEEDS_ESCAPE = re.compile(r"[\\()\x00-\x1f\x7f]")
_WIDTHS: dict[str, dict[str, float]] = {}
_ESCAPES = [chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}" for b in range(256)]
for _special in "\\()":
    _ESCAPES[ord(_special)] = "\\" + _special


def clean(text: str) -> str:
    """Printable text in the standard fonts' character set (Windows-1252): tabs become
    spaces, other control characters go, anything else the fonts cannot show becomes "?"."""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text.replace("\t", " "))
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        text = "".join(c if _encodable(c) else "?" for c in text)
    return text


def _encodable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _widths(font: str) -> dict[str, float]:
    """Advance widths (per 1000 units of size) of every character `clean` lets through."""
    table = _WIDTHS.get(font)
    if table is None:
        table = {}
        for code in range(256):
            try:
                char = bytes([code]).decode("cp1252")
            except UnicodeDecodeError:
                continue
            table[char] = stringWidth(char, font, 1000)
        _WIDTHS[font] = table
    return table


def width(text: str, font: str, size: float) -> float:
    """The standard fonts have no kerning: a text's width is the sum of its characters'."""
    table = _widths(font)
    try:
        return sum(map(table.__getitem__, text)) * size / 1000
    except KeyError:
        return stringWidth(text, font, size)


def _fit(word: str, font: str, size: float, room: float) -> int:
    """How many leading characters of `word` fit in `room` (at least one)."""
    low, high = 1, len(word)
    while low < high:
        mid = (low + high + 1) // 2
        if width(word[:mid], font, size) <= room:
            low = mid
        else:
            high = mid - 1
    return low


def wrap(text: str, font: str, size: float, room: float) -> list[str]:
    """Greedy word wrap by the font's metrics; a word wider than the line is cut."""
    lines: list[str] = []
    space = width(" ", font, size)
    for paragraph in clean(text).split("\n"):
        if width(paragraph, font, size) <= room:
            lines.append(paragraph)
            continue
        line, line_width = "", 0.0
        for word in paragraph.split(" "):
            word_width = width(word, font, size)
            if line and line_width + space + word_width <= room:
                line, line_width = f"{line} {word}", line_width + space + word_width
                continue
            if not line and word_width <= room:
                line, line_width = word, word_width
                continue
            if line:
                lines.append(line)
            while word_width > room:
                cut = _fit(word, font, size, room)
                lines.append(word[:cut])
                word = word[cut:]
                word_width = width(word, font, size)
            line, line_width = word, word_width
        lines.append(line)
    return lines


@dataclass(frozen=True)
class Op:
    x: float
    y: float
    font: str
    size: float
    text: Text
    align: str = "left"


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float


class Layout:
    """Pages of positioned text; `y` is the baseline cursor on the current page."""

    def __init__(self) -> None:
        self.pages: list[list[Op | Rule]] = []
        self.sections: dict[str, int] = {}
        self.y = TOP
        self.new_page()

    def new_page(self) -> None:
        self.pages.append([])
        self.y = TOP

    @property
    def page_index(self) -> int:
        return len(self.pages) - 1

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM and self.y < TOP:
            self.new_page()

    def put(self, x: float, text: Text, font: str, size: float, align: str = "left") -> None:
        self.pages[-1].append(Op(x, self.y, font, size, text, align))

    def rule(self) -> None:
        self.pages[-1].append(Rule(LEFT, self.y + 3, RIGHT, self.y + 3))

    def space(self, height: float) -> None:
        self.y -= height

    def section(self, key: str, title: str, new_page: bool = True) -> None:
        """A section title (its page remembered for the contents), on a new page by default."""
        if new_page and self.pages[-1]:
            self.new_page()
        else:
            self.need(80)
            self.space(12)
        self.sections[key] = self.page_index
        self.heading(title, size=15)

    def heading(self, title: str, size: float = 11.5) -> None:
        self.need(size * 3)
        self.space(size * 0.4)
        for line in wrap(title, BOLD, size, WIDTH):
            self.put(LEFT, line, BOLD, size)
            self.space(size * 1.3)
        self.space(size * 0.3)

    def paragraph(self, text: str, style: tuple[str, float, float] = BODY, indent: float = 0.0) -> None:
        font, size, leading = style
        for line in wrap(text, font, size, WIDTH - indent):
            self.need(leading)
            self.put(LEFT + indent, line, font, size)
            self.space(leading)
        self.space(leading * 0.4)

    def fields(self, pairs: list[tuple[str, Text]], label_width: float = 130.0) -> None:
        font, size, leading = BODY
        for label, value in pairs:
            lines = [value] if callable(value) else wrap(value or "-", font, size, WIDTH - label_width)
            self.need(leading * min(len(lines), 3))
            self.put(LEFT, clean(label), BOLD, size)
            for line in lines:
                self.need(leading)
                self.put(LEFT + label_width, line, font, size)
                self.space(leading)
        self.space(leading * 0.4)

    def table(
        self, columns: list[tuple[str, float]], rows: list[list[Text]], style: tuple[str, float, float] = SMALL
    ) -> None:
        """Columns of (title, width); a row's height is its tallest wrapped cell. A row that does
        not fit moves to the next page (split across pages only when taller than a page); the
        header repeats on every page the table reaches."""
        font, size, leading = style

        def header() -> None:
            x = LEFT
            for title, width in columns:
                self.put(x, title, BOLD, size)
                x += width
            self.space(leading * 0.5)
            self.rule()
            self.space(leading)

        def room() -> int:
            return int((self.y - BOTTOM) // leading) + 1

        self.need(leading * 4)
        header()
        for row in rows:
            cells = [
                [cell] if callable(cell) else wrap(cell, font, size, width - 4)
                for cell, (_, width) in zip(row, columns, strict=True)
            ]
            height = max(len(c) for c in cells)
            if height > room() and height <= (TOP - BOTTOM) // leading - 2:
                self.new_page()
                header()
            done = 0
            while done < height:
                if room() < 1:
                    self.new_page()
                    header()
                take = min(room(), height - done)
                top = self.y
                x = LEFT
                for (_, width), lines in zip(columns, cells, strict=True):
                    self.y = top
                    for line in lines[done : done + take]:
                        self.put(x, line, font, size)
                        self.space(leading)
                    x += width
                self.y = top - take * leading
                done += take
            self.space(leading * 0.25)


def when(value: str | None) -> str:
    return f"{value[:10]} {value[11:16]} UTC" if value else "-"


def _size(value: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _layout(data: PacketData, cover_lines: list[tuple[str, Text]]) -> Layout:
    layout = Layout()
    case, handoff = data.case, data.handoff
    stored = data.stored

    # Cover
    layout.space(60)
    layout.put(LEFT, clean(data.agency_name), BOLD, 13)
    layout.space(30)
    layout.put(LEFT, "Prosecution Handoff Packet", BOLD, 24)
    layout.space(34)
    layout.put(LEFT, clean(f"Case {case['number']}: {case['title']}"), "Helvetica", 14)
    layout.space(22)
    layout.put(LEFT, f"Handoff {handoff['number']}", "Helvetica", 14)
    layout.space(34)
    layout.fields(cover_lines)
    layout.heading("Contents")
    contents = [
        ("summary", "Case summary"),
        ("narrative", "Narrative"),
        ("charges", "Charges considered"),
        ("leads", "Leads"),
        ("evidence", "Evidence index (SHA-256)"),
        ("custody", "Chain of custody per item"),
        ("certification", "Certification under Federal Rule of Evidence 902(14)"),
    ]
    for key, title in contents:
        layout.put(LEFT, title, "Helvetica", 10.5)
        layout.put(
            RIGHT,
            lambda key=key: f"page {layout.sections[key] + 1}   {data.bates(layout.sections[key] + 1)}",
            "Helvetica",
            10.5,
            align="right",
        )
        layout.space(15)
    layout.space(20)
    layout.paragraph(
        "Law enforcement sensitive. This packet is addressed to the prosecutor named above and "
        "contains information about an ongoing investigation. Every page carries a Bates number; the "
        "native copies of the evidence follow in the same series (see loadfile.dat). VERIFY.txt explains "
        "how to prove that nothing in this packet was changed.",
        SMALL,
    )

    layout.section("summary", "Case summary")
    layout.fields(
        [
            ("Case number", case["number"]),
            ("Title", case["title"]),
            ("Kind", case["kind"]),
            ("Status", case["status"]),
            ("Priority", case["priority"]),
            ("Agency", f"{case['agency']['name']} ({case['agency']['code']})"),
            ("Lead investigator", person_label(case["lead_investigator"])),
            ("Operation", case["parent_number"] or "-"),
            ("Opened", when(case["created_at"])),
            ("Leads in this handoff", str(len(data.leads))),
            ("Evidence items", f"{len(data.evidence)} ({len(stored)} copied natively)"),
        ]
    )
    layout.heading("Summary")
    layout.paragraph(case["summary"] or "(no summary recorded)")

    layout.section("narrative", "Narrative", new_page=False)
    layout.paragraph(handoff["narrative"] or "(no narrative given)")

    layout.section("charges", "Charges considered", new_page=False)
    if handoff["charges"]:
        layout.table(
            [("Statute", 150.0), ("Description", WIDTH - 150.0)],
            [[c["statute"], c["text"]] for c in handoff["charges"]],
            BODY,
        )
    else:
        layout.paragraph("(no charges listed)")

    layout.section("leads", "Leads")
    if data.leads:
        layout.table(
            [
                ("Name", 100.0),
                ("Source / status", 76.0),
                ("Priority", 40.0),
                ("First / last seen", 92.0),
                ("Identifiers", WIDTH - 308.0),
            ],
            [
                [
                    lead["display_name"] or lead["id"],
                    f"{lead['source']}\n{lead['status']}",
                    str(lead["priority"]),
                    f"{when(lead['first_seen_at'])}\n{when(lead['last_seen_at'])}",
                    "\n".join(f"{i['kind']}: {i['value']}" for i in lead["identifiers"]) or "-",
                ]
                for lead in data.leads
            ],
        )
    else:
        layout.paragraph("(no leads in this handoff)")

    layout.section("evidence", "Evidence index")
    layout.paragraph(
        "Each item's SHA-256 was computed when it was taken in and again when this packet was built; "
        "the two matched for every item copied into natives/. Items held in external evidence systems "
        "are listed with their declared hash and are not copied.",
        SMALL,
    )
    rows: list[list[Text]] = []
    for index, item in enumerate(data.evidence):
        where = item["native_path"] or f"reference: {item['external_uri']}"
        status = "" if item["status"] == "active" else f"\nWITHDRAWN: {item['withdrawn_reason']}"
        rows.append(
            [
                lambda index=index: data.evidence[index]["bates"],
                f"{item['kind']}{status}",
                f"{where}\n{_size(item['size_bytes'])}, collected {when(item['collected_at'])} by "
                f"{person_label(item['collected_by']) or '-'}\nSHA-256 {item['sha256']}",
            ]
        )
    layout.table([("Bates", 66.0), ("Kind", 76.0), ("Item", WIDTH - 142.0)], rows)

    layout.section("custody", "Chain of custody")
    layout.paragraph("Every event of each item's chain of custody, oldest first, by Bates number.", SMALL)
    custody_rows: list[list[Text]] = []
    for index, item in enumerate(data.evidence):
        events = data.custody.get(item["id"], [])
        for number, event in enumerate(events or [None]):
            bates: Text = (lambda index=index: data.evidence[index]["bates"]) if number == 0 else ""
            if event is None:
                custody_rows.append([bates, "-", "-", "-", "-", "no custody events recorded"])
                continue
            custody_rows.append(
                [
                    bates,
                    when(event["occurred_at"]),
                    event["action"],
                    person_label(event["actor"]),
                    " / ".join(p for p in (event["from_party"], event["to_party"], event["location"]) if p) or "-",
                    event["note"] or "-",
                ]
            )
    layout.table(
        [
            ("Bates", 62.0),
            ("When", 92.0),
            ("Action", 56.0),
            ("By", 94.0),
            ("From / to / where", 96.0),
            ("Note", WIDTH - 400.0),
        ],
        custody_rows,
    )

    _certification(layout, data)
    return layout


def _certification(layout: Layout, data: PacketData) -> None:
    stored = data.stored
    layout.section("certification", "Certification of authenticity of data copied from an electronic device")
    layout.paragraph("Pursuant to Federal Rules of Evidence 902(14) and 902(11)", (BOLD, 10, 13))
    layout.paragraph(
        "I, ______________________________________ (name), attest, under penalties of perjury under the laws "
        "of the United States of America pursuant to 28 U.S.C. \u00a7 1746, that the information contained in "
        "this certification is true and correct."
    )
    layout.paragraph(
        f"1. I am employed by {data.agency_name} and my title is ______________________________. I am "
        "qualified to authenticate the data described below because of my experience and training in the "
        "collection, preservation and examination of digital evidence, and because I am a custodian of the "
        f"records of case {data.case['number']}."
    )
    layout.paragraph(
        f"2. The {len(stored)} files in the natives folder of this packet are copies of data collected and held "
        "by the agency. Each copy was identified by its hash value: the hash value of each file was computed when "
        "the item was taken into custody and recorded in its chain of custody; when this packet was made, the hash "
        "value of each copy was computed again and was identical to the value recorded at intake. The hash values "
        "are listed in the evidence index of this report, in evidence.csv and in loadfile.dat."
    )
    layout.paragraph(
        "3. Hash algorithm: SHA-256 (Secure Hash Algorithm, 256 bits, FIPS PUB 180-4). Identical SHA-256 "
        "values show, to a scientific certainty, that two files are bit-for-bit identical."
    )
    referenced = len(data.evidence) - len(stored)
    layout.paragraph(
        f"4. {referenced} item(s) held in external evidence systems are listed by reference with the hash value "
        "declared at intake and are not copied into this packet."
    )
    layout.paragraph(
        "5. The packet's manifest lists the SHA-256 of every file in the packet and is signed with the "
        "agency's Ed25519 key; the audit excerpt is anchored to the signed audit checkpoint "
        f"{data.checkpoint['origin']} of tree size {data.checkpoint['tree_size']}, root hash "
        f"{data.checkpoint['root_hash']}. The included program verify_packet.py checks all of this."
    )
    layout.fields(
        [
            ("Items identified by hash", f"{len(stored)} native files, {referenced} by reference"),
            (
                "Bates numbers of the natives",
                lambda: f"{stored[0]['bates']} to {stored[-1]['bates']}" if stored else "-",
            ),
            ("Hash algorithm", "SHA-256"),
        ],
        label_width=150.0,
    )
    layout.space(14)
    font, size, _ = BODY
    for label in ("Signature", "Printed name", "Title", "Agency", "Telephone / e-mail", "Date"):
        layout.need(28)
        value = data.agency_name if label == "Agency" else "_" * 60
        layout.put(LEFT, label, BOLD, size)
        layout.put(LEFT + 130, clean(value), font, size)
        layout.space(28)


def render(data: PacketData, cover_lines: list[tuple[str, Text]]) -> bytes:
    """The PDF bytes. Assigns the evidence Bates numbers (after the report's pages) in `data`."""
    layout = _layout(data, cover_lines)
    total = len(layout.pages)
    data.assign_bates(total)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=letter, invariant=1, pageCompression=0)
    pdf.setTitle(clean(f"{data.folder} report"))
    pdf.setAuthor(clean(data.agency_name))
    pdf.setSubject(clean(f"Prosecution handoff {data.handoff['number']} of case {data.case['number']}"))
    pdf.setCreator("caseapi")
    header = clean(f"{data.case['number']}  -  Handoff {data.handoff['number']}  -  Law enforcement sensitive")
    for number, ops in enumerate(layout.pages, start=1):
        _draw_page(pdf, ops, header, number, total, data.bates(number))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _draw_page(pdf: Any, ops: list[Op | Rule], header: str, number: int, total: int, bates: str) -> None:
    """One page as literal PDF operators: the same operators reportlab's drawString writes for
    the standard fonts (WinAnsi text, escaped), minus its per-call overhead. Fonts are
    registered through the document as setFont does (`_doc.getInternalFontName`; reportlab's
    version is pinned in requirements.txt)."""
    fonts: dict[str, str] = {}
    text_ops = ["BT"]
    line_ops = ["0.5 w"]
    current: tuple[str, float] | None = None

    def show(x: float, y: float, font: str, size: float, text: str, align: str = "left") -> None:
        nonlocal current
        if current != (font, size):
            if font not in fonts:
                fonts[font] = pdf._doc.getInternalFontName(font)
            text_ops.append(f"{fonts[font]} {_number(size)} Tf")
            current = (font, size)
        if align == "right":
            x -= width(text, font, size)
        if text.isascii() and not _NEEDS_ESCAPE.search(text):
            escaped = text
        else:
            escaped = "".join(_ESCAPES[b] for b in text.encode("cp1252", "replace"))
        text_ops.append(f"1 0 0 1 {_number(x)} {_number(y)} Tm ({escaped}) Tj")

    def rule(x1: float, y1: float, x2: float, y2: float) -> None:
        line_ops.append(f"{_number(x1)} {_number(y1)} m {_number(x2)} {_number(y2)} l S")

    show(LEFT, PAGE_HEIGHT - 36, "Helvetica", 8, header)
    rule(LEFT, PAGE_HEIGHT - 42, RIGHT, PAGE_HEIGHT - 42)
    for op in ops:
        if isinstance(op, Rule):
            rule(op.x1, op.y1, op.x2, op.y2)
        else:
            show(op.x, op.y, op.font, op.size, clean(op.text() if callable(op.text) else op.text), op.align)
    rule(LEFT, 46, RIGHT, 46)
    show(LEFT, 34, "Helvetica", 8, f"Page {number} of {total}")
    show(RIGHT, 34, "Helvetica-Bold", 10, bates, align="right")
    text_ops.append("ET")
    pdf.addLiteral("\n".join(line_ops + text_ops))
