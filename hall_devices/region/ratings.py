"""One 好差评 record per rating and per 未评价, from a hall's events (sans-IO).

The record holds the hall's facts, neutral to any province: the data items of GB/T 39046-2020
table 9 that a hall knows (办件编号, 评价渠道, 评价人, 评价时间, 评价次数, 满意度, 文字评价, 行政区划) and
the hall's own (ticket, window, clerk, device, wait and service time). A province's codes are applied
on export only (:mod:`hall_devices.region.profiles`); a 未评价 stays without a level here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from hall_devices.coordinator import events as ev


class RatingRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    hall_id: str
    district: str  # 行政区划 (GB/T 2260)
    case_number: str  # 办件编号: the hall knows its ticket, not the approval system's case number
    channel: str  # our channel (pad, kiosk, web, qr); the province's code comes from its profile
    rater: str  # 评价人, masked: a pad does not know the applicant
    rated_at: datetime | None  # 评价时间; for 未评价 the end of the rating window
    rating_count: int  # 评价次数: one rating per service session
    level: int | None  # 5 非常满意 … 1 非常不满意 (GB/T 39734); None: 未评价
    text: str  # 文字评价: the reasons chosen
    ticket_number: str | None
    window: int | None
    clerk_id: str | None
    service_id: str | None
    department_id: str | None
    device: str | None  # the window's evaluation pad, as the hall's channel names it
    wait_s: float | None  # issued → first called
    service_s: float | None  # service started (or called) → finished


RATER_MASK = "匿名"


def record_id(hall_id: str, event: ev.RatingRecorded | ev.RatingTimedOut) -> str:
    if isinstance(event, ev.RatingRecorded):
        return f"{hall_id}:{event.rating_id}"
    return f"{hall_id}:unrated:{event.prompt_id}"


def build(hall_id: str, district: str, event: ev.RatingRecorded | ev.RatingTimedOut,
          ticket_events: list[ev.Event]) -> RatingRecord:
    """The record of a rating or a 未评价; ``ticket_events``: the events of its ticket, in order
    (for a 未评价 the ticket is found from the TicketFinished that carries its prompt id)."""
    issued = next((e for e in ticket_events if isinstance(e, ev.TicketIssued)), None)
    called = next((e for e in ticket_events if isinstance(e, ev.TicketCalled)), None)
    started = next((e for e in ticket_events if isinstance(e, ev.ServiceStarted)), None)
    finished = next((e for e in reversed(ticket_events) if isinstance(e, ev.TicketFinished)), None)
    wait_s = (called.at - issued.at).total_seconds() if called and issued else None
    began = started or called
    service_s = (finished.at - began.at).total_seconds() if finished and began else None
    common = {"record_id": record_id(hall_id, event), "hall_id": hall_id, "district": district,
              "rater": RATER_MASK, "rating_count": 1, "wait_s": wait_s, "service_s": service_s,
              "service_id": issued.service_id if issued else None}
    if isinstance(event, ev.RatingRecorded):
        return RatingRecord(**common, case_number=event.ticket_id, channel=event.channel,
                            rated_at=event.rated_at, level=int(event.level), text="、".join(event.reasons),
                            ticket_number=event.ticket_number, window=event.window, clerk_id=event.clerk_id,
                            department_id=event.department_id,
                            device=f"window-{event.window}-{event.channel}")
    return RatingRecord(**common, case_number=finished.ticket_id if finished else "",
                        channel="pad", rated_at=finished.rating_expires_at if finished else event.at,
                        level=None, text="", ticket_number=issued.number if issued else None,
                        window=finished.window if finished else None,
                        clerk_id=finished.clerk_id if finished else None, department_id=None,
                        device=f"window-{finished.window}-pad" if finished else None)
