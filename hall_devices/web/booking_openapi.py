"""The OpenAPI 3.1 document of the booking API, made from its pydantic models (docs/appointments.md)."""

from __future__ import annotations

import json
from typing import Any

from hall_devices.web.booking_models import (
    ApiError,
    BookingCancelled,
    BookingChange,
    BookingIn,
    BookingList,
    BookingOut,
    ImportReport,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _answers(ok: str, *errors: int) -> dict[str, Any]:
    body = {"application/json": {"schema": _ref(ok)}}
    out: dict[str, Any] = {"200": {"description": "OK", "content": body}}
    for status in (401, 503, *errors):
        out[str(status)] = {"description": "refused: error.code and, for a 400, error.field say why",
                            "content": {"application/json": {"schema": _ref("ApiError")}}}
    return out


def openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    models = (BookingIn, BookingChange, BookingOut, BookingCancelled, BookingList, ApiError, ImportReport)
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    booking_id = [{"name": "booking_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    day = [{"name": "day", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}}]
    upload = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}},
                                             XLSX: {"schema": {"type": "string", "format": "binary"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hall_devices booking intake (网上预约)", "version": "1"},
        "components": {"schemas": schemas,
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": {
            "/api/v1/bookings": {
                "get": {"summary": "the bookings whose slot starts on a day (hall time)", "parameters": day,
                        "responses": _answers("BookingList", 400)},
                "post": {"summary": "create a booking; the same again is accepted, booked once",
                         "requestBody": _json_body("BookingIn"),
                         "responses": _answers("BookingOut", 400, 409)},
            },
            "/api/v1/bookings/{booking_id}": {
                "put": {"summary": "change a booking (the answer is the booking as it is now)",
                        "parameters": booking_id,
                        "requestBody": _json_body("BookingChange"),
                        "responses": _answers("BookingOut", 400, 404, 409)},
                "delete": {"summary": "cancel a booking; cancelling again is accepted",
                           "parameters": booking_id,
                           "responses": _answers("BookingCancelled", 404, 409)},
            },
            "/api/v1/bookings/import": {
                "post": {"summary": "import a day's bookings from CSV (UTF-8) or Excel .xlsx: a report "
                                    "per row",
                         "parameters": [{"name": "filename", "in": "query", "schema": {"type": "string"}}],
                         "requestBody": upload, "responses": _answers("ImportReport", 400)},
            },
        },
    }


BEGIN, END = "<!-- openapi:begin -->", "<!-- openapi:end -->"


def with_openapi(doc: str) -> str:
    """``doc`` (docs/appointments.md) with the generated document between its markers."""
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    body = json.dumps(openapi(), ensure_ascii=False, indent=1)
    return f"{head}{BEGIN}\n```json\n{body}\n```\n{END}{tail}"
