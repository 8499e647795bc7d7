"""An Onbon BX-6E network controller on a TCP port, answering from the manual (protocols.md §7).

Decodes every packet independently of the agent's assumptions where the manual speaks (frame,
header, escaping, CRC, A7 00 areas, A7 07 voice, A2 00 ping, A2 07 brightness) and answers ACK
(A0 00) or NACK (A0 01, status bit 0) with the manual's error numbers: 5 for a bad CRC, 2 for a
command it does not know. Keeps each area's decoded bitmap (:meth:`Bx6Simulator.bitmap`), the
brightness and what the voice queue was asked to say.

Switches: ``silent`` (reads, shows, answers nothing), ``nack`` (an error number every request is
refused with, nothing shown), ``busy`` (how many of the next requests are refused with 3, busy).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from hall_devices.leds import bx6
from hall_devices.leds.bx6_area import Bitmap, parse_dynamic_area


@dataclass
class Bx6Switches:
    silent: bool = False
    nack: bx6.Error | None = None
    busy: int = 0


@dataclass
class Bx6State:
    areas: dict[int, Bitmap] = field(default_factory=dict)
    spoken: list[str] = field(default_factory=list)
    brightness: int | None = None
    packets: int = 0
    pings: int = 0
    refused: int = 0
    bad: int = 0
    connections: int = 0
    area_packets: int = 0  # A7 00 requests shown
    updated_at: float = 0.0  # time.monotonic() when the last complete A7 00 packet was shown
    last_size: int = 0  # bytes of that packet on the wire


class Bx6Simulator:
    """One controller listening on ``127.0.0.1:port`` (0: a free port, see :attr:`port`)."""

    def __init__(self, address: int = 1, port: int = 0, host: str = "127.0.0.1") -> None:
        self.address = address
        self.switches = Bx6Switches()
        self.state = Bx6State()
        self._changed = threading.Condition()
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.2)
        self.host, self.port = self._server.getsockname()[:2]
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"sim-bx6 {self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def start(self) -> Bx6Simulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """As a controller that rebooted: every open connection is closed."""
        for client in list(self._clients):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        self._clients.clear()

    def bitmap(self, area: int = 0) -> Bitmap | None:
        return self.state.areas.get(area)

    def wait(self, predicate: object, timeout_s: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)  # type: ignore[arg-type]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _peer = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self._clients.append(client)
            with self._changed:
                self.state.connections += 1
            threading.Thread(target=self._serve, args=(client,), name=f"sim-bx6 {self.port} client",
                             daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        decoder = bx6.Bx6Decoder()
        client.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            for item in decoder.feed(data):
                reply = self._answer(item)
                if reply is not None and not self.switches.silent:
                    with contextlib.suppress(OSError):
                        client.sendall(reply)

    def _answer(self, item: bx6.Packet | bx6.BadPacket) -> bytes | None:
        with self._changed:
            try:
                if isinstance(item, bx6.BadPacket):
                    self.state.bad += 1
                    return self._reply(bx6.Error.CHECKSUM) if "CRC" in item.reason else None
                if item.header.destination not in (self.address, bx6.ANY_ADDRESS):
                    return None
                self.state.packets += 1
                wants_reply = item.data[:1] == b"\x01"
                error = self._apply(item)
                return self._reply(error) if wants_reply else None
            finally:
                self._changed.notify_all()

    def _apply(self, packet: bx6.Packet) -> bx6.Error:
        if self.switches.nack is not None or self.switches.busy:
            self.state.refused += 1
            if self.switches.busy:
                self.switches.busy -= 1
                return bx6.Error.BUSY
            return self.switches.nack or bx6.Error.BUSY
        command, data = packet.command, packet.data
        try:
            if command == (0xA2, 0x00):
                self.state.pings += 1
            elif command == (0xA2, 0x07) and len(data) == 3 + 2 + 1 + 48:
                self.state.brightness = data[6]
            elif command == (0xA7, 0x00):
                for area in parse_dynamic_area(data):
                    self.state.areas[area.area_id] = area.bitmap
                self.state.area_packets += 1
                self.state.updated_at = time.monotonic()
                self.state.last_size = len(packet.encode())
            elif command == (0xA7, 0x07):
                self.state.spoken.append(bx6.parse_voice_insert(data))
            elif command == (0xA7, 0x01):
                self.state.areas.clear() if data[5:6] == b"\xff" else [
                    self.state.areas.pop(i, None) for i in data[6:]]
            else:
                return bx6.Error.NO_CMD
        except bx6.Bx6Error:
            return bx6.Error.SCREEN_PARA
        return bx6.Error.OK

    def _reply(self, error: bx6.Error) -> bytes:
        header = bx6.Header(bx6.PC_ADDRESS, source=self.address, device_type=bx6.BX_6E1)
        return bx6.Packet(header, bx6.response_data(error)).encode()
