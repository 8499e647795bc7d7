"""The announcer agent: calls from MQTT to the announcer's queue, and the agent's status."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hall_devices.announcer.speech import (
    Announcer,
    EspeakSpeaker,
    Output,
    Player,
    SegmentSpeaker,
    Speaker,
    WavFolder,
)
from hall_devices.contract import CALL, Call, DeviceState
from hall_devices.layout import AnnouncerDevice, Layout
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


def make_output(spec: str) -> Output | None:
    """``off``, ``wav:FOLDER`` or ``device[:NAME]`` (played with aplay)."""
    if spec == "off":
        return None
    if spec.startswith("wav:"):
        return WavFolder(Path(spec.removeprefix("wav:")))
    if spec == "device" or spec.startswith("device:"):
        return Player(device=spec.partition(":")[2] or "default")
    raise ValueError(f"output {spec!r}: use off, wav:FOLDER or device[:NAME]")


def missing_tool(speaker: Speaker, output: Output | None) -> str | None:
    """The program speech or playing needs and this PC lacks, with its Debian package; else None."""
    needed = []
    if isinstance(speaker, EspeakSpeaker):
        needed.append(("espeak-ng", "espeak-ng"))
    if isinstance(output, Player):
        player = output.command[0]
        needed.append((player, "alsa-utils" if player == "aplay" else player))
    for program, package in needed:
        if shutil.which(program) is None:
            return f"{program} 未安装 / {program} is not installed (apt-get install {package})"
    return None


class AnnouncerAgent:
    def __init__(self, settings: Settings, layout: Layout, device_id: str, *, output: str | None = None,
                 voice: str = "cmn", segments: Path | None = None) -> None:
        device = layout.device(device_id)
        if not isinstance(device, AnnouncerDevice):
            raise ValueError(f"device {device_id!r} is a {device.kind}, not an announcer")
        speaker: Speaker = SegmentSpeaker(segments) if segments else EspeakSpeaker(voice)
        spec = output or ("device" if device.output == "default" else device.output)
        self.announcer = Announcer(speaker, make_output(spec), repeat=device.repeat)
        self.bus = Bus(settings, BusOptions(client_id=device_id, hall_id=layout.hall.id,
                                            device_id=device_id, device_kind="announcer"))
        self.bus.subscribe(CALL, self._on_call)

    def _on_call(self, inbound: Inbound[Call]) -> None:
        self.announcer.announce(inbound.payload)  # only queued here: speaking happens on its own thread

    def start(self, wait_s: float | None = 10.0) -> None:
        self.announcer.start()
        self.bus.start(wait_s)
        off = self.announcer.output is None
        missing = None if off else missing_tool(self.announcer.speaker, self.announcer.output)
        if missing is not None:  # said at start, not when the first call is to be spoken
            log.error("the announcer cannot speak: %s", missing)
            self.bus.set_status(DeviceState.FAULT, detail=missing)
            return
        self.bus.set_status(DeviceState.OK, detail="switched off" if off else None)

    def stop(self) -> None:
        self.bus.stop()
        self.announcer.stop()
