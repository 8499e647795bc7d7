from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from hall_devices.bus import BadPayloadError, decode, encode
from hall_devices.contract import (
    ROUTES,
    DeviceState,
    DeviceStatus,
    Rating,
    contract_markdown,
    find_route,
    route,
)
from tests.conftest import ROOT


def test_generated_doc_is_in_sync() -> None:
    assert (ROOT / "docs" / "contract.md").read_text(encoding="utf-8") == contract_markdown(), (
        "docs/contract.md is stale: run `hall-devices contract docs`")


def test_every_request_has_an_answer_route_with_a_reply_model() -> None:
    for r in ROUTES.values():
        if r.answer:
            answer = ROUTES[r.answer]
            assert set(answer.params) == set(r.params)
            answer.model.model_validate({"command_id": None, "ok": False,
                                         "error": {"code": "x", "message": "y"}})


def test_topics_round_trip() -> None:
    for r in ROUTES.values():
        params = {p: f"v{i}" for i, p in enumerate(r.params)}
        topic = r.topic(**params)
        assert find_route(topic) == (r, params)


def test_a_topic_level_cannot_smuggle_wildcards() -> None:
    with pytest.raises(ValueError, match="not a topic level"):
        route("device_status").topic(hall="demo", device="P1/#")


def test_payloads_refuse_unknown_fields_and_bad_levels() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        Rating(rating_id="r1", prompt_id="p", window=1, level=6, rated_at=now)  # type: ignore[arg-type]
    with pytest.raises(BadPayloadError, match="not a Rating: bonus: Extra inputs"):
        decode(route("rating"), b'{"rating_id":"r","prompt_id":"p","window":1,"level":5,'
                                b'"rated_at":"2026-01-01T00:00:00Z","bonus":1}')
    with pytest.raises(BadPayloadError) as caught:
        decode(route("rating"), b"\xff\xfe")
    assert caught.value.problem.code == "bad_json"


def test_encode_decode() -> None:
    status = DeviceStatus(device_id="P1", kind="printer", state=DeviceState.WARNING,
                          updated_at=datetime.now(UTC))
    assert decode(route("device_status"), encode(status)) == status


def test_a_sender_is_who_its_topic_names() -> None:
    from hall_devices.contract import ErrorReport, HelpRequest, Problem, RatingLevel, Text

    now = datetime.now(UTC)
    cases = [
        (route("device_status"), {"device": "K1"},
         DeviceStatus(device_id="P2", kind="printer", state=DeviceState.OK, updated_at=now), "'K1'", "'P2'"),
        (route("rating"), {"window": "3"},
         Rating(rating_id="r", prompt_id="p", window=6, level=RatingLevel.SATISFIED, rated_at=now),
         "'3'", "'6'"),
        (route("error"), {"reporter": "K1"},
         ErrorReport(topic="t", problem=Problem(code="c", message="m"), excerpt="", reported_by="web",
                     at=now),
         "'K1'", "'web'"),
        (route("help_request"), {"kiosk": "K1"},
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
    assert {r.name for r in ROUTES.values() if r.identity} == {"device_status", "rating", "error",
                                                               "help_request"}
