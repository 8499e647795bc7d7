"""Reading an import file: refused early past the row limit, duplicate columns named."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from openpyxl import Workbook

from hall_devices.web import booking_import
from hall_devices.web.booking_import import (
    MAX_ROWS,
    MAX_UNPACKED,
    ImportFileError,
    RowProblem,
    read_rows,
    to_booking,
)
from hall_devices.web.booking_models import BookingIn

HEADER = ["booking_id", "service_id", "date", "start", "end"]


def test_reading_stops_at_the_first_row_past_the_limit() -> None:
    read = 0

    def rows() -> Iterator[list[str]]:
        nonlocal read
        yield HEADER
        for n in range(10 * MAX_ROWS):
            read += 1
            yield [f"B{n}", "passport", "2026-12-01", "10:00", "10:30"]

    with pytest.raises(ImportFileError, match=f"more than {MAX_ROWS} rows"):
        booking_import._table(rows())
    assert read == MAX_ROWS + 1


def test_an_xlsx_past_the_limit_is_refused_and_a_file_at_the_limit_read() -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for n in range(MAX_ROWS + 1):
        sheet.append([f"B{n}", "passport", "2026-12-01", "10:00", "10:30"])
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(ImportFileError, match="at most"):
        read_rows(out.getvalue(), "day.xlsx")
    lines = [",".join(HEADER)] + [f"B{n},passport,2026-12-01,10:00,10:30" for n in range(MAX_ROWS)]
    assert len(read_rows("\n".join(lines).encode(), "day.csv")) == MAX_ROWS


def test_a_column_named_twice_is_refused_naming_it() -> None:
    with pytest.raises(ImportFileError, match="more than once: date, 日期"):
        read_rows("booking_id,service_id,date,日期,start,end\n".encode(), "x.csv")
    rows = read_rows("预约号,事项编码,日期,开始,结束,other\nA1,passport,2026-12-01,10:00,10:30,x\n".encode(),
                     "x.csv")
    assert rows == [(2, {"booking_id": "A1", "service_id": "passport", "date": "2026-12-01",
                         "start": "10:00", "end": "10:30"})]


def test_a_workbook_that_unpacks_too_large_is_refused_before_parsing() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    out = io.BytesIO()
    book.save(out)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\0" * (MAX_UNPACKED + 1))  # ~33 KB packed: a zip bomb's shape
    assert len(out.getvalue()) < 2**20
    with pytest.raises(ImportFileError, match="unpacks to 32 MiB, over the limit of 32 MiB"):
        read_rows(out.getvalue(), "day.xlsx")
    with pytest.raises(ImportFileError, match=r"not an Excel \.xlsx workbook"):
        read_rows(b"PK\x03\x04 broken", "day.xlsx")


def test_an_id_number_kept_as_an_excel_number_gets_a_hint_and_a_plus_86_phone_is_taken() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([*HEADER, "身份证号", "手机号"])
    sheet.append(["N1", "passport", "2026-12-01", "10:00", "10:30", 110105194912310020, "+86 138 0013 8000"])
    sheet.append(["N2", "passport", "2026-12-01", "10:00", "10:30", None, "+86 138 0013 8000"])
    out = io.BytesIO()
    book.save(out)
    (_, numeric), (_, plain) = read_rows(out.getvalue(), "day.xlsx")
    problem = to_booking(numeric, 8)
    assert isinstance(problem, RowProblem) and problem.field == "id_number" and "as text" in problem.message
    booking = to_booking(plain, 8)
    assert isinstance(booking, BookingIn) and booking.phone == "13800138000"
