"""Per-province 好差评 reporting profiles, as data (``profiles/*.toml``), and the export they shape.

A profile says how a province wants a :class:`RatingRecord`: its channel codes (they differ by
province), which way its level code runs (GB/T 39046-2020 annex A.8: 1 = 非常满意; at least one
province's interface: 1 = 非常不满意), whether it takes 未评价 records, and whether a 未评价 is sent as
a default rating after N days. That default exists only in what is exported, marked as such; the
region's record keeps no level.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hall_devices.contract import RATING_NAMES
from hall_devices.region.ratings import RatingRecord


class ProfileError(Exception):
    pass


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    code_1_means: Literal["very_satisfied", "very_dissatisfied"]
    unrated_records: bool = True
    default_level_after_days: int = Field(0, ge=0, le=365)
    default_level: int = Field(4, ge=1, le=5)
    channels: dict[str, str]

    def level_code(self, level: int) -> int:
        """The province's code of one of our levels (5 非常满意 … 1 非常不满意)."""
        return 6 - level if self.code_1_means == "very_satisfied" else level


FIELDS: list[tuple[str, str]] = [  # (key, 中文 column name): GB/T 39046-2020 table 9, then the hall's
    ("record_id", "记录编号"), ("case_number", "办件编号"), ("channel_code", "评价渠道"),
    ("rater", "评价人"), ("rated_at", "评价时间"), ("rating_count", "评价次数"),
    ("satisfaction", "满意度"), ("satisfaction_code", "满意度代码"), ("default_applied", "默认评价"),
    ("text", "文字评价"), ("district", "行政区划"), ("hall_id", "大厅"), ("ticket_number", "号票"),
    ("window", "窗口"), ("clerk_id", "工作人员"), ("device", "评价设备"), ("service_id", "事项"),
    ("wait_s", "等候时长(秒)"), ("service_s", "办理时长(秒)"),
]

Exported = dict[str, str | int | float | bool | None]


def wanted(record: RatingRecord, profile: Profile) -> bool:
    """Whether the province takes this record ever: False for a 未评价 when the profile takes no
    未评价 records and gives no default rating."""
    return record.level is not None or profile.unrated_records or profile.default_level_after_days > 0


def export(record: RatingRecord, profile: Profile, now: datetime) -> Exported | None:
    """The record as the province wants it now, or None when it wants it later or not at all."""
    level = record.level
    default = False
    if level is None:
        if profile.default_level_after_days:
            wait = timedelta(days=profile.default_level_after_days)
            if record.rated_at is None or now < record.rated_at + wait:
                return None
            level, default = profile.default_level, True
        elif not profile.unrated_records:
            return None
    channel = profile.channels.get(record.channel)
    if channel is None:
        raise ProfileError(f"profile {profile.name}: no code for channel {record.channel!r}")
    return {
        "record_id": record.record_id, "case_number": record.case_number, "channel_code": channel,
        "rater": record.rater, "rated_at": record.rated_at.isoformat() if record.rated_at else None,
        "rating_count": record.rating_count,
        "satisfaction": RATING_NAMES[level].zh if level is not None else "未评价",
        "satisfaction_code": profile.level_code(level) if level is not None else None,
        "default_applied": default, "text": record.text, "district": record.district,
        "hall_id": record.hall_id, "ticket_number": record.ticket_number, "window": record.window,
        "clerk_id": record.clerk_id, "device": record.device, "service_id": record.service_id,
        "wait_s": record.wait_s, "service_s": record.service_s,
    }


def to_csv(rows: list[Exported]) -> str:
    """CSV with the 中文 column names of :data:`FIELDS` (UTF-8; prefix a BOM for Excel yourself)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _key, label in FIELDS])
    for row in rows:
        writer.writerow(["" if row[key] is None else row[key] for key, _label in FIELDS])
    return out.getvalue()


def to_json(rows: list[Exported]) -> str:
    return json.dumps({"records": rows}, ensure_ascii=False, indent=1)


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name (``gbt39046``, ``reversed-example``) or a TOML file of one's own."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    else:
        entry = resources.files("hall_devices.region").joinpath("profiles", f"{name_or_path}.toml")
        if not entry.is_file():
            raise ProfileError(f"no profile named {name_or_path!r} (give a .toml file for your own)")
        text = entry.read_text(encoding="utf-8")
    try:
        return Profile.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ProfileError(f"profile {name_or_path}: {exc}") from exc
