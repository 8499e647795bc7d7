"""A bus of window pads (叫号评价器: keys and rating keys) on a pty, driven from code.

Press keys, type digits and rate as an applicant would; read what the host shows on each pad and
how often it beeped; see whether the host echoed (acknowledged) each frame a pad sent. By default
pads echo the host's frames (many do); the facts only say the host echoes. Fault switches:
``bad_checksum`` (frames sent with a wrong checksum), ``garbage`` (noise before each frame),
``silent`` (pads echo nothing: non-echoing pads), ``one_frame_confirm`` (digit and confirm sent in one
frame ``[digit, 0F]``, the published form). :meth:`unplug` / :meth:`plug` pull the bus adapter; pads
lose what they showed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hall_devices.demo.sim.port import PortSimulator
from hall_devices.pads.codec import (
    Control,
    Frame,
    Garbage,
    Key,
    PadDecoder,
    key_frame,
    rating_frame,
    rating_level,
    shown_digits,
)


@dataclass
class PadView:
    display: str = "      "
    beeps: int = 0
    rating_open_s: int = 0  # seconds the host last lit the rating keys for
    rating_asks: int = 0
    frames: list[Frame] = field(default_factory=list)


@dataclass
class PadSwitches:
    bad_checksum: bool = False
    garbage: bool = False
    silent: bool = False
    one_frame_confirm: bool = False


class PadBusSimulator(PortSimulator):
    def __init__(self, path: Path, addresses: list[int]) -> None:
        super().__init__(path, "sim-pads")
        self.pads = {address: PadView() for address in addresses}
        self.switches = PadSwitches()
        self.echoes: list[bytes] = []  # frames of ours the host echoed back
        self._decoder = PadDecoder()
        self._changed = threading.Condition()

    # --- as people at the window would ---------------------------------------------------------

    def send(self, frame: Frame) -> bytes:
        raw = frame.encode()
        if self.switches.bad_checksum:
            raw = raw[:-2] + bytes([(raw[-2] + 1) % 256]) + raw[-1:]
        if self.switches.garbage:
            raw = b"\x55\xaa\x00\x68\x02" + raw
        self.port.write(raw)
        return frame.encode()

    def press(self, address: int, *keys: Key) -> None:
        for key in keys:
            self.send(key_frame(address, key))
            time.sleep(0.02)  # a finger is slower than the bus

    def type(self, address: int, digits: str, confirm: bool = True) -> None:
        if confirm and digits and self.switches.one_frame_confirm:
            self.press(address, *(Key(int(d)) for d in digits[:-1]))
            self.send(Frame(address, Control.KEY, bytes([int(digits[-1]), Key.CONFIRM])))
            return
        self.press(address, *(Key(int(d)) for d in digits), *([Key.CONFIRM] if confirm else []))

    def unplug(self) -> None:
        with self._changed:
            self.port.unplug()
            for pad in self.pads.values():
                pad.display = "      "  # the pads lost power with the adapter

    def plug(self) -> None:
        self.port.plug()

    def rate(self, address: int, level: int) -> None:
        self.send(rating_frame(address, level))

    # --- what the host did ---------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Garbage):
                continue
            self._from_host(item)

    def _from_host(self, frame: Frame) -> None:
        with self._changed:
            pad = self.pads.get(frame.address)
            if frame.control == Control.KEY or rating_level(frame) is not None:
                self.echoes.append(frame.encode())  # the host acknowledging a pad's frame
            elif pad is not None:
                pad.frames.append(frame)
                if frame.control == Control.SHOW:
                    pad.display = shown_digits(frame)
                elif frame.control == Control.BEEP:
                    pad.beeps += frame.data[0] if frame.data else 1
                elif frame.control == Control.RATING and len(frame.data) == 2:
                    pad.rating_open_s = frame.data[1]
                    pad.rating_asks += 1
                if not self.switches.silent:
                    self.port.write(frame.encode())  # pads acknowledge by echoing
            self._changed.notify_all()

    def wait(self, predicate: object, timeout_s: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)  # type: ignore[arg-type]

    def display(self, address: int) -> str:
        return self.pads[address].display.strip()
