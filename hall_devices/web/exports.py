"""Exports of statistics, ratings and cases as CSV (UTF-8 with a BOM, so Excel opens the Chinese
right) and Excel .xlsx (openpyxl, a well-kept library: docs/dependencies.md). Headers are Chinese,
times are hall time, names not ids: a manager hands the file on as it is.

CSV goes through web/export.py's :func:`csv_download`, and an .xlsx cell through its
:func:`safe_cell`: a text starting with ``=`` (a clerk's note, an applicant's name) never becomes a
formula in either."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from starlette.responses import Response

from hall_devices.web.export import csv_download, safe_cell

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Sheet:
    """A table to export: ``title`` names the sheet and the file; ``rows`` hold plain values."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


def xlsx_bytes(sheet: Sheet) -> bytes:
    book = Workbook()
    page = book.active
    assert page is not None  # a new workbook has its first sheet
    page.title = sheet.title[:31]  # Excel's limit for a sheet name
    page.append([safe_cell(header) for header in sheet.headers])
    for cell in page[1]:
        cell.font = Font(bold=True)
    for row in sheet.rows:
        page.append(["" if value is None else safe_cell(value) for value in row])
    for index, (column, header) in enumerate(zip(page.columns, sheet.headers, strict=False), start=1):
        widest = max([len(str(header)) * 2, *(len(str(c.value or "")) for c in column)])
        page.column_dimensions[get_column_letter(index)].width = min(60, widest + 2)
    page.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(sheet: Sheet, name: str, kind: str) -> Response:
    """``kind`` is ``csv`` or ``xlsx``; ``name`` the file name without extension (may be Chinese:
    sent RFC 6266 style with an ASCII fallback)."""
    ascii_name = name.encode("ascii", "ignore").decode() or "export"
    disposition = (f"attachment; filename=\"{ascii_name}.{kind}\"; "
                   f"filename*=UTF-8''{quote(name)}.{kind}")
    if kind == "csv":
        response = csv_download(sheet.headers, sheet.rows, f"{ascii_name}.csv")
        response.headers["Content-Disposition"] = disposition  # the Chinese name as well
        return response
    return Response(xlsx_bytes(sheet), media_type=XLSX, headers={"Content-Disposition": disposition})
