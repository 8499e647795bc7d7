"""A running process follows the layout its hall's coordinator runs, without a restart.

The coordinator publishes the layout it runs on the retained ``hall_layout`` route (at start and
after applying a region's push, :func:`published`). Every process that reads the layout subscribes
through its :class:`~hall_devices.mqtt.bus.Bus` with a :class:`LayoutFollower`, which parses the text
with the same parser as a layout file (:func:`hall_devices.layout.parse_layout`) on paho's thread
and hands a new :class:`Layout` to the process's ``swap`` callback (still on paho's thread: the
callback only queues it for the process's own thread or loop: a Qt queued signal,
``call_soon_threadsafe``, an inbox). A text that does not parse, names another hall, or changes this
process's own device (or the screens and pads on its bus) is refused with a warning and the old
layout kept: a device cannot change its identity or port at run time (provision, then restart).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from hall_devices.contract import HALL_LAYOUT, HallLayout
from hall_devices.layout import Device, Layout, LayoutError, parse_layout
from hall_devices.mqtt.bus import Bus, Inbound

log = logging.getLogger(__name__)

# Device fields that a pushed layout may change at run time: what a screen shows, not who it is.
SHOWN_FIELDS = frozenset({"notice"})


class LayoutRefusedError(Exception):
    """A published layout this process will not run; the message names the problem."""


def published(version: int, text: str) -> HallLayout:
    """The ``hall_layout`` payload for a layout file's ``text`` (the region's ``version``, 0 for
    the hall's own file)."""
    return HallLayout(version=version, digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                      layout_toml=text)


def fixed(devices: Sequence[Device]) -> list[dict[str, Any]]:
    """What of ``devices`` only a restart may change: everything but :data:`SHOWN_FIELDS`."""
    return [d.model_dump(exclude=set(SHOWN_FIELDS)) for d in devices]


def _own(layout: Layout, device_id: str) -> list[Device]:
    """The device and what speaks through it (the screens or pads of a bus, a kiosk's reader)."""
    return [d for d in layout.devices if device_id in
            (d.id, getattr(d, "bus", None), getattr(d, "kiosk", None))]


def adopt(current: Layout, message: HallLayout, device_id: str | None) -> Layout:
    """The new layout in ``message`` for the process running ``current`` as ``device_id`` (None:
    a process that is no device, e.g. the web).

    Raises :class:`LayoutRefusedError` when the text is not the digest's, does not parse, is
    another hall's, or changes this device or its members other than in :data:`SHOWN_FIELDS`.
    """
    if hashlib.sha256(message.layout_toml.encode("utf-8")).hexdigest() != message.digest:
        raise LayoutRefusedError(f"layout version {message.version}: the text is not its digest's")
    try:
        new = parse_layout(message.layout_toml, f"published layout version {message.version}")
    except LayoutError as exc:
        raise LayoutRefusedError(f"layout version {message.version} does not parse: {exc}") from exc
    if new.hall.id != current.hall.id:
        raise LayoutRefusedError(f"layout version {message.version} is hall {new.hall.id!r}'s, "
                                 f"this is {current.hall.id!r}")
    if device_id is not None and fixed(_own(new, device_id)) != fixed(_own(current, device_id)):
        raise LayoutRefusedError(
            f"layout version {message.version} changes or removes device {device_id!r} or what is on "
            "its bus: a device cannot change its identity or port at run time; left as it is "
            "until a restart")
    return new


class LayoutFollower:
    """Subscribes to ``hall_layout`` and calls ``swap(layout, version)`` on paho's thread for each
    new layout this process may run (see the module's docstring)."""

    def __init__(self, layout: Layout, device_id: str | None,
                 swap: Callable[[Layout, int], None]) -> None:
        self.layout = layout  # touched on paho's thread only, after the constructor
        self.device_id = device_id
        self.swap = swap
        self.digest: str | None = None
        self.version: int | None = None

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(HALL_LAYOUT, self.receive)

    def receive(self, inbound: Inbound[HallLayout]) -> None:
        message = inbound.payload
        if message.digest == self.digest:
            return
        try:
            new = adopt(self.layout, message, self.device_id)
        except LayoutRefusedError as exc:
            log.warning("%s: %s; the running layout is kept", self.device_id or "layout", exc)
            return
        self.digest, self.version = message.digest, message.version
        if new == self.layout:
            return  # the file this process started with: nothing to redraw
        self.layout = new
        log.info("%s: layout version %d applied at run time", self.device_id or "layout",
                 message.version)
        self.swap(new, message.version)
