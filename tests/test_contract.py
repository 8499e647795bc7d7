from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest
from pydantic import ValidationError

from hall_devices.contract import (
    DEVICE_STATUS,
    ERROR,
    HALL_PREFIX,
    HELP_REQUEST,
    QUERY_REPLY,
    RATING,
    REGION_EVENTS,
    REGION_EVENTS_IN,
    REGION_HEAD,
    REGION_HEAD_IN,
    ROUTES,
    WINDOW_COMMAND,
    DeviceState,
    DeviceStatus,
    QueryAnswer,
    QueryKind,
    QueryReply,
    QueryRequest,
    Rating,
    RatingsAnswer,
    RequestRoute,
    TicketAnswer,
    WindowQueueAnswer,
    contract_markdown,
    find_route,
    hall_subtree,
    request_id_field,
)
from hall_devices.mqtt.bus import BadPayloadError, decode, encode
from tests.conftest import ROOT


def test_generated_doc_is_in_sync() -> None:
    assert (ROOT / "docs" / "contract.md").read_text(encoding="utf-8") == contract_markdown(), (
        "docs/contract.md is stale: run `hall-devices contract docs`")


def test_every_request_has_an_answer_route_with_a_reply_model() -> None:
    for r in ROUTES.values():
        if isinstance(r, RequestRoute):
            answer = r.answer
            assert answer is ROUTES[answer.name]
            assert set(answer.params) == set(r.params)
            answer.model.model_validate({"command_id": None, "ok": False,
                                         "error": {"code": "x", "message": "y"}})


def test_topics_round_trip() -> None:
    for r in ROUTES.values():
        params = {p: str(i + 1) if p == "window" else f"v{i}" for i, p in enumerate(r.params)}
        topic = r.topic(**params)
        assert find_route(topic) == (r, params)


def test_a_topic_level_cannot_smuggle_wildcards() -> None:
    with pytest.raises(ValueError, match="not a topic level"):
        DEVICE_STATUS.topic(hall="demo", device="P1/#")
    with pytest.raises(ValueError, match="not a topic level"):
        hall_subtree("demo/#")


def test_the_hall_subtree_covers_every_hall_route() -> None:
    """The ACL gives the coordinator and the monitor one filter for the hall: it must hold every
    route on the hall's broker (all but the regional broker's ``region/...`` routes)."""
    assert hall_subtree("demo") == "hall/demo/#"
    hall_routes = [r for r in ROUTES.values() if not r.pattern.startswith("region/")]
    assert len(hall_routes) > 20
    for r in hall_routes:
        assert r.pattern.startswith(HALL_PREFIX), r.name
        params = {p: "1" for p in r.params} | {"hall": "demo"}
        assert r.topic(**params).startswith(hall_subtree("demo").removesuffix("#"))


def test_payloads_refuse_unknown_fields_and_bad_levels() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        Rating(rating_id="r1", prompt_id="p", window=1, level=6, rated_at=now)
    with pytest.raises(BadPayloadError, match="not a Rating: bonus: Extra inputs"):
        decode(RATING, b'{"rating_id":"r","prompt_id":"p","window":1,"level":5,'
                                b'"rated_at":"2026-01-01T00:00:00Z","bonus":1}')
    with pytest.raises(BadPayloadError) as caught:
        decode(RATING, b"\xff\xfe")
    assert caught.value.problem.code == "bad_json"


def test_encode_decode() -> None:
    status = DeviceStatus(device_id="P1", kind="printer", state=DeviceState.WARNING,
                          updated_at=datetime.now(UTC))
    assert decode(DEVICE_STATUS, encode(status)) == status


def test_a_sender_is_who_its_topic_names() -> None:
    from hall_devices.contract import (
        ErrorReport,
        HelpRequest,
        Problem,
        RatingLevel,
        RegionEvents,
        RegionHead,
        Text,
    )

    now = datetime.now(UTC)
    cases = [
        (DEVICE_STATUS, {"device": "K1"},
         DeviceStatus(device_id="P2", kind="printer", state=DeviceState.OK, updated_at=now), "'K1'", "'P2'"),
        (RATING, {"window": "3"},
         Rating(rating_id="r", prompt_id="p", window=6, level=RatingLevel.SATISFIED, rated_at=now),
         "'3'", "'6'"),
        (ERROR, {"reporter": "K1"},
         ErrorReport(topic="t", problem=Problem(code="c", message="m"), excerpt="", reported_by="web",
                     at=now),
         "'K1'", "'web'"),
        # Region (issue 20): a hall's bridge account speaks only for its own hall.
        (REGION_EVENTS, {"hall": "h1"}, RegionEvents(hall_id="h2", events=[], head=0),
         "'h1'", "'h2'"),
        (REGION_HEAD, {"hall": "h1"}, RegionHead(hall_id="h2", head=0, at=now), "'h1'", "'h2'"),
        (REGION_EVENTS_IN, {"district": "420704", "site": "h1"},
         RegionEvents(hall_id="h2", events=[], head=0), "'h1'", "'h2'"),
        (REGION_HEAD_IN, {"district": "420704", "site": "h1"},
         RegionHead(hall_id="h2", head=0, at=now), "'h1'", "'h2'"),
        (HELP_REQUEST, {"kiosk": "K1"},
         HelpRequest(request_id="h", kiosk_id="K2", location=Text(zh="一楼", en="ground floor"),
                     raised_at=now), "'K1'", "'K2'"),
    ]
    for r, params, payload, topic_side, payload_side in cases:
        problem = r.misattributed({"hall": "demo", **params}, payload)
        assert problem is not None and problem.code == "wrong_sender", r.name
        assert topic_side in problem.message and payload_side in problem.message
        field, param = r.identity  # type: ignore[misc]
        same = payload.model_copy(update={field: type(getattr(payload, field))(params[param])})
        assert r.misattributed({"hall": "demo", **params}, same) is None, r.name
    # Every device-originated route that names its sender in the payload checks it.
    assert {r.name for r in ROUTES.values() if r.identity} == {
        "device_status", "rating", "error", "help_request",
        "region_events", "region_head", "region_events_in", "region_head_in"}


def test_every_datetime_in_the_contract_carries_a_zone() -> None:
    from hall_devices.contract import _nested, describe_fields

    models = {m for r in ROUTES.values() for m in (r.model, *_nested(r.model))}
    shown = [(m.__name__, name, kind) for m in models for name, kind, _req, _doc in describe_fields(m)
             if "datetime" in kind.lower()]
    assert len(shown) >= 10
    assert all("AwareDatetime" in kind for _m, _n, kind in shown), shown


@pytest.mark.parametrize("day", ["not-a-date", "2026-02-30", "2026-13-01", "２０２６-01-01", "2026-1-1", ""])
def test_query_days_are_real_days(day: str) -> None:
    with pytest.raises(ValidationError):
        QueryRequest(command_id="q-1", kind=QueryKind.STATISTICS, first_day=day)


def test_a_query_range_runs_forward() -> None:
    assert QueryRequest(command_id="q-1", kind=QueryKind.STATISTICS, first_day="2026-11-23").first_day
    with pytest.raises(ValidationError, match="before first_day"):
        QueryRequest(command_id="q-1", kind=QueryKind.STATISTICS, first_day="2026-11-23",
                     last_day="2026-11-22")


@pytest.mark.parametrize("level", ["²", "３", "0", "10000", "3a", "-1", " 3"])
def test_a_window_level_is_ascii_digits(level: str) -> None:
    assert WINDOW_COMMAND.match(f"hall/demo/window/{level}/command") is None
    with pytest.raises(ValueError, match="not a topic level"):
        WINDOW_COMMAND.topic(hall="demo", window=level)


def test_every_request_names_its_own_id_field() -> None:
    for r in ROUTES.values():
        field = request_id_field(r.model)
        if isinstance(r, RequestRoute):  # its answer repeats the id: the request must have one
            assert field is not None, r.name
        if field is not None:
            assert r.model.model_fields[field].is_required(), (r.name, field)
    rating = Rating(rating_id="r-1", prompt_id="p", window=6, level=4,
                    rated_at=datetime(2026, 11, 23, 1, tzinfo=UTC))
    assert (request_id_field(Rating), rating.request_key) == ("rating_id", "r-1")
    assert request_id_field(DeviceStatus) is None


def test_every_query_kind_has_one_answer_model_and_it_round_trips() -> None:
    members = get_args(get_args(QueryAnswer)[0])
    kinds = [kind for model in members for kind in get_args(model.model_fields["kind"].annotation)]
    assert sorted(kinds) == sorted(QueryKind)
    queue = WindowQueueAnswer(window=3, waiting=[], count=0, current=None, no_show=["A001"])
    back = decode(QUERY_REPLY, encode(QueryReply(command_id="q-1", ok=True, data=queue)))
    assert back.answer_as(WindowQueueAnswer) == queue and back.answer_as(RatingsAnswer) is None
    with pytest.raises(ValidationError):  # the kind tells the shape apart: a ticket answer needs one
        QueryReply.model_validate({"command_id": "q-2", "ok": True, "data": {"kind": "ticket"}})
    assert TicketAnswer.model_fields["kind"].is_required()
