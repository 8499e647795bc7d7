"""Query and form values checked before use: a bad one is a 400 with a message, never a 500."""

from __future__ import annotations

import datetime as dt

from pydantic import ValidationError

FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)  # what a day parameter may be


class BadRequestError(Exception):
    """A request value is malformed; ``str(exc)`` says which and why (Chinese / English)."""


def int_param(value: str | None, name: str, low: int = 0, high: int = 10_000) -> int | None:
    """``value`` as a whole number in [low, high]; None if empty. Raises :class:`BadRequestError`."""
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequestError(f"参数 {name} 应为整数 / {name} must be a whole number, "
                              f"got {value[:40]!r}") from None
    if not low <= number <= high:
        raise BadRequestError(f"参数 {name} 超出范围 / {name} must be between {low} and {high}, got {number}")
    return number


def day_param(value: str | None, name: str) -> str | None:
    """``value`` as a day ``YYYY-MM-DD``; None if empty. Raises :class:`BadRequestError`."""
    if value is None or value.strip() == "":
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"参数 {name} 应为日期 YYYY-MM-DD / {name} must be a day YYYY-MM-DD, "
                         f"got {value[:40]!r}") from None
    # Days near year 1 or 9999 overflow once shifted to UTC or by a day; no hall record is there.
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadRequestError(f"参数 {name} 超出范围 / {name} must be between {FIRST_DAY} and {LAST_DAY}, "
                              f"got {day}")
    return day.isoformat()


def text_param(value: str | None, name: str, longest: int) -> str | None:
    """``value`` stripped, at most ``longest`` characters; None if empty. Raises :class:`BadRequestError`."""
    if value is None or value.strip() == "":
        return None
    if len(value) > longest:
        raise BadRequestError(f"参数 {name} 过长 / {name} is longer than {longest} characters ({len(value)})")
    return value.strip()


def from_validation(exc: ValidationError) -> BadRequestError:
    """A payload model's refusal as a :class:`BadRequestError` naming each field."""
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return BadRequestError(f"参数有误 / bad parameter: {problems}")
