"""LED controllers on a pty: BX-5K/6K (checked CRC and escapes, ACK/NACK) or EQ2023 text.

Keeps each address's current text per area, readable by tests and shown by the demo. Switches:
``silent`` (no replies at all), ``silent_at`` (addresses of screens that answer nothing: a dead
controller), ``busy`` (address → how many of its next frames are refused with NACK 3, busy),
``nack`` (address → the error code every frame to it is refused with), ``garble`` (addresses whose
replies arrive as line noise), ``corrupt`` (address → how many of its next frames arrive damaged by
line noise: a CRC error and a NACK), ``baud`` paces reading like a UART. Replies follow the manual
(protocols.md §2): ACK A0 00, NACK A0 01 with the error code; they are written at once, not paced
(a real controller takes its time and a 30-byte ACK ~31 ms at 9600 baud). As the manual says, any run
of A5 is a frame head: an unfinished frame followed by one is dropped, shown and answered by nothing
(counted in :attr:`LedBusSimulator.abandoned`); no switch departs from that, nothing documents a
controller that does.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from hall_devices.demo.sim.port import PortSimulator
from hall_devices.leds import bx, eq


@dataclass
class AreaText:
    text: str
    width: int
    height: int
    display_mode: int


@dataclass
class Controller:
    address: int
    areas: dict[int, AreaText] = field(default_factory=dict)
    frames: int = 0
    nacks: int = 0
    refused: int = 0  # frames answered busy or with a NACK switch, not shown
    updated_at: float = 0.0
    started_at: float = 0.0  # when the first byte of the last frame shown was read (BX)
    last_size: int = 0  # bytes of the last frame shown, as on the wire
    last_areas: tuple[int, ...] = ()  # area ids the last frame updated


@dataclass
class LedSwitches:
    silent: bool = False
    corrupt: dict[int, int] = field(default_factory=dict)
    silent_at: set[int] = field(default_factory=set)
    busy: dict[int, int] = field(default_factory=dict)
    nack: dict[int, bx.ErrorCode] = field(default_factory=dict)
    garble: set[int] = field(default_factory=set)


class LedBusSimulator(PortSimulator):
    def __init__(self, path: Path, protocol: str, addresses: list[int], baud: int | None = None) -> None:
        super().__init__(path, "sim-led", baud)
        self.protocol = protocol
        self.controllers = {a: Controller(a) for a in addresses}
        self.switches = LedSwitches()
        self.bad_frames = 0
        # Every BX frame shown: (first byte read, shown, address, area ids), the latest 2000.
        self.history: deque[tuple[float, float, int, tuple[int, ...]]] = deque(maxlen=2000)
        self._frame_started = 0.0
        self._last_byte = -1  # the last byte read: a run of A5 may end in the next chunk
        self._bx = bx.BxDecoder()
        self._eq = eq.EqDecoder()
        self._changed = threading.Condition()

    def text(self, address: int, area: int = 0) -> str:
        """What the screen shows in an area, line-padding spaces folded."""
        shown = self.controllers[address].areas.get(area)
        return re.sub(r" {2,}", "\n", shown.text).strip() if shown else ""

    def wait(self, predicate: object, timeout_s: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)  # type: ignore[arg-type]

    @property
    def abandoned(self) -> int:
        """BX frames the host stopped writing part-way (a new head came before their tail)."""
        return self._bx.abandoned

    def on_bytes(self, data: bytes) -> None:
        if self.protocol == "bx":
            for at, segment in self._frame_bodies(data):
                if at is not None:  # a header begins here: its frame began 8 head bytes before
                    self._frame_started = self.arrived_at + self.wire_s(at) - self.wire_s(len(bx.HEAD_RUN))
                self._bx_bytes(segment)
        else:
            self._eq_bytes(data)

    def _frame_bodies(self, data: bytes) -> list[tuple[int | None, bytes]]:
        """``data`` cut where a frame's header begins (the first byte after a run of A5; its offset,
        None for the bytes before the first). A host writes eight A5; a longer run holds the head of
        a frame it abandoned within its head, so a frame's start is counted from its header, never
        from an abandoned frame's first byte."""
        cuts = [i for i, byte in enumerate(data) if byte != bx.HEAD
                and (data[i - 1] if i else self._last_byte) == bx.HEAD]
        self._last_byte = data[-1] if data else self._last_byte
        starts = sorted({0, *cuts})
        return [(start if start in cuts else None, data[start:end])
                for start, end in zip(starts, [*starts[1:], len(data)], strict=True)]

    def _eq_bytes(self, data: bytes) -> None:
        for item in self._eq.feed(data):
            if isinstance(item, eq.EqGarbage):
                self.bad_frames += 1
                continue
            targets = self.controllers.values() if item.address == eq.BROADCAST else [
                c for c in self.controllers.values() if c.address == item.address]
            for controller in targets:
                self._show(controller, {0: AreaText(item.text, 0, 0, 1)})

    def _bx_bytes(self, data: bytes) -> None:
        for decoded in self._bx.feed(data):
            item = decoded
            if isinstance(item, bx.BxFrame) and self.switches.corrupt.get(item.header.destination):
                self.switches.corrupt[item.header.destination] -= 1
                damaged = bytearray(item.encode())
                damaged[-4] ^= 0x01  # line noise in the last data byte: the CRC no longer matches
                (item,) = bx.BxDecoder().feed(bytes(damaged))
            if isinstance(item, bx.BadFrame):
                self.bad_frames += 1
                address = item.header.destination if item.header else None
                if item.crc_error and address in self.controllers:
                    self.controllers[address].nacks += 1
                    self._reply(address, bx.ErrorCode.CRC_ERROR)
                continue
            self._bx_frame(item)

    def _bx_frame(self, frame: bx.BxFrame) -> None:
        address = frame.header.destination
        targets = list(self.controllers.values()) if address in (bx.BROADCAST, bx.BROADCAST_REPLY) else (
            [self.controllers[address]] if address in self.controllers else [])
        if not targets:
            return
        wants_reply = len(frame.data) > 2 and frame.data[2] == 0x01 and address != bx.BROADCAST
        if address in self.switches.silent_at:
            return  # a dead controller: nothing shown, nothing said
        refusal = self.switches.nack.get(address)
        if self.switches.busy.get(address):
            self.switches.busy[address] -= 1
            refusal = bx.ErrorCode.BUSY
        if refusal is not None and address in self.controllers:
            with self._changed:
                self.controllers[address].refused += 1
                self._changed.notify_all()
            self._reply(address, refusal)
            return
        if frame.command != (0xA3, 0x06):
            if wants_reply:
                self._reply(address, bx.ErrorCode.NO_SUCH_COMMAND)
            return
        try:
            areas = bx.parse_dynamic_area(frame.data)
        except bx.BxError:
            if wants_reply:
                self._reply(address, bx.ErrorCode.NO_SUCH_COMMAND)
            return
        shown = {a.area_id: AreaText(a.text.decode("gbk", errors="replace"), a.width, a.height,
                                     a.display_mode) for a in areas}
        for controller in targets:
            controller.last_size = len(frame.encode())
            controller.last_areas = tuple(shown)
            controller.started_at = self._frame_started
            self._show(controller, shown)
            self.history.append((self._frame_started, controller.updated_at, controller.address,
                                 tuple(shown)))
        if wants_reply:
            self._reply(address, bx.ErrorCode.OK)

    def _show(self, controller: Controller, areas: dict[int, AreaText]) -> None:
        with self._changed:
            controller.areas.update(areas)
            controller.frames += 1
            controller.updated_at = self.line_free_at  # the UART model's, not the wake-up's
            self._changed.notify_all()

    def _reply(self, address: int, code: bx.ErrorCode) -> None:
        if self.switches.silent:
            return
        reply = bx.BxFrame(bx.Header(bx.PC_ADDRESS, source=address), bx.reply_data(code)).encode()
        if address in self.switches.garble:
            reply = reply[:8] + bytes([reply[8] ^ 0x10]) + reply[9:]  # noise in the header: CRC fails
        self.port.write(reply)
