"""A day's bookings from a CSV or Excel (.xlsx) file: rows in, booking requests or row problems out.

Columns (first row; English or Chinese names, any order): booking_id 预约号, service_id 事项编码,
date 日期 (YYYY-MM-DD), start 开始 and end 结束 (HH:MM, hall time); optional id_number 身份证号 and
phone 手机号.
CSV is UTF-8 (a BOM is fine). Each row is checked on its own; a bad row never stops the others.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hall_devices.web.booking_models import BookingIn, first_problem

COLUMNS = {"booking_id": "booking_id", "预约号": "booking_id", "service_id": "service_id",
           "事项编码": "service_id", "date": "date", "日期": "date", "start": "start", "开始": "start",
           "end": "end", "结束": "end", "id_number": "id_number", "身份证号": "id_number",
           "phone": "phone", "手机号": "phone"}
NUMERIC_ID = "id_number_is_a_number"  # set by _table for an Excel number in the ID number column
REQUIRED = ("booking_id", "service_id", "date", "start", "end")
MAX_ROWS = 5000
MAX_UNPACKED = 32 * 2**20  # bytes of a workbook's unpacked parts; 5,000 rows take about 2 MiB


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not CSV/XLSX, no header, a required column missing)."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based, as a spreadsheet shows it (the header is row 1)
    field: str | None
    message: str


def read_rows(raw: bytes, filename: str) -> list[tuple[int, dict[str, str]]]:
    """(row number, column → text) for every non-empty row. Raises :class:`ImportFileError`.

    Reading stops at the first row past :data:`MAX_ROWS`: a huge file is refused without being read
    whole. CPU-bound for a large workbook: an asyncio caller runs it in a worker thread.
    """
    if filename.lower().endswith(".xlsx") or raw[:2] == b"PK":
        return _xlsx(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError("the CSV file is not UTF-8 text (save it as CSV UTF-8)") from None
    return _table(csv.reader(io.StringIO(text)))


def _table(table: Iterator[Sequence[Any]]) -> list[tuple[int, dict[str, str]]]:
    first = next(table, None)
    if first is None:
        raise ImportFileError("the file is empty")
    names = [str(h).strip().lower() if str(h).isascii() else str(h).strip() for h in first]
    header = [COLUMNS.get(name, "") for name in names]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFileError(f"the first row lacks the column(s) {', '.join(missing)}")
    twice = sorted({n for n, c in zip(names, header, strict=True) if c and header.count(c) > 1})
    if twice:
        raise ImportFileError(f"the first row names a column more than once: {', '.join(twice)}")
    rows = []
    for number, cells in enumerate(table, start=2):
        values = {name: "" if cell is None else _cell(cell).strip()
                  for name, cell in zip(header, cells, strict=False) if name}
        if any(name == "id_number" and isinstance(cell, int | float)
               for name, cell in zip(header, cells, strict=False)):
            values[NUMERIC_ID] = "1"  # Excel keeps 15 digits of a number: the ID number is already lost
        if any(values.values()):
            rows.append((number, values))
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"more than {MAX_ROWS} rows: at most {MAX_ROWS} in one file")
    return rows


def _xlsx(raw: bytes) -> list[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook  # only an import of a workbook needs it

    try:  # openpyxl scans a whole sheet without a <dimension> before its first row (10 s for 240,000
        # rows), and a small zip may unpack to gigabytes: the unpacked size is bounded first
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFileError(f"not an Excel .xlsx workbook: {exc}") from None
    if unpacked > MAX_UNPACKED:
        raise ImportFileError(f"the workbook unpacks to {unpacked // 2**20} MiB, over the limit of "
                              f"{MAX_UNPACKED // 2**20} MiB (far more than {MAX_ROWS} rows)")
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ImportFileError(f"not an Excel .xlsx workbook: {exc}") from None
    try:
        return _table(iter(book.worksheets[0].iter_rows(values_only=True)))
    finally:
        book.close()


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


def to_booking(values: dict[str, str], utc_offset_hours: float) -> BookingIn | RowProblem:
    """One row as a booking request, or the problem naming its field (row number filled by caller)."""
    zone = dt.timezone(dt.timedelta(hours=utc_offset_hours))
    if values.get(NUMERIC_ID):
        return RowProblem(0, "id_number", "身份证号存成了数字，请把该列设为文本后重新填写 / the ID number is "
                          "stored as a number (Excel keeps only 15 digits): format the column as text")
    try:
        day = dt.date.fromisoformat(values.get("date", ""))
    except ValueError:
        return RowProblem(0, "date", f"date {values.get('date')!r} is not YYYY-MM-DD")
    times = {}
    for name in ("start", "end"):
        try:
            times[name] = dt.datetime.combine(day, dt.time.fromisoformat(values.get(name, "")), zone)
        except ValueError:
            return RowProblem(0, name, f"{name} {values.get(name)!r} is not HH:MM")
    try:
        return BookingIn(booking_id=values.get("booking_id", ""), service_id=values.get("service_id", ""),
                         slot_start=times["start"], slot_end=times["end"],
                         id_number=values.get("id_number") or None, phone=values.get("phone") or None)
    except ValidationError as exc:
        field, message = first_problem(exc)
        return RowProblem(0, field, message)
