"""CSV downloads of the web, every one through :func:`csv_download`, safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, WPS and LibreOffice (CSV injection, OWASP "CSV Injection"): a failed sign-in's user name
``=HYPERLINK(...)`` would become a live link in a manager's audit export. Such a cell gets a leading
single quote, which the spreadsheet shows as text. Numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from starlette.responses import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet will take it as text: a string starting a formula gets ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The CSV (with a UTF-8 byte-order mark, so that Excel reads the Chinese) of ``rows``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return "\ufeff" + out.getvalue()


def csv_download(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str) -> Response:
    """A ``text/csv`` attachment named ``filename`` (ASCII: the caller's own, no user text)."""
    return Response(csv_text(header, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
