"""The voice announcer: Mandarin words, order, nothing cut off (durations checked with sox)."""

from __future__ import annotations

import json
import subprocess
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall_devices.announcer.agent import AnnouncerAgent
from hall_devices.announcer.speech import (
    Announcer,
    EspeakSpeaker,
    Player,
    SegmentSpeaker,
    SpeechError,
    join_wavs,
    speech_text,
    speech_words,
)
from hall_devices.contract import CALL, DEVICE_STATUS, Call, Text
from hall_devices.coordinator import texts
from hall_devices.coordinator.texts import window_reading
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from tests.support import HallBroker, probe, wait_until


def call(number: str, window: int, n: int = 1) -> Call:
    return Call(call_id=f"c{n}", ticket_id=f"t-{number}", ticket_number=number, window=window,
                window_name=Text(zh="窗口", en="window"), service_id="passport", called_at=datetime.now(UTC),
                text=texts.call_text(number, window), speech=texts.speech(number, window),
                window_label=texts.window_label(window, Text(zh="窗口", en="window")))


def test_words() -> None:
    assert speech_text(call("A001", 3)) == "请 A 零零一 号 到 三 号窗口 办理"
    assert speech_words(call("B120", 21)) == [
        "请", "B", "一", "二", "零", "号", "到", "二十一", "号窗口", "办理"]
    assert [window_reading(n) for n in (3, 10, 12, 20, 37, 120)] == ["三", "十", "十二", "二十", "三十七",
                                                                   "一二零"]


def soxi_seconds(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True,
                                check=True).stdout)


def test_five_calls_at_once_are_five_whole_announcements_in_order(
        own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    out = tmp_path / "spoken"
    agent = AnnouncerAgent(own_broker.settings("VOICE1"), layout, "VOICE1", output=f"wav:{out}")
    agent.start()
    coordinator = probe(own_broker.port, "coordinator", own_broker.credentials["coordinator"])
    calls = [call(n, w, i) for i, (n, w) in enumerate(
        [("A001", 1), ("B002", 6), ("C003", 7), ("A004", 2), ("D005", 11)], start=1)]
    for one in calls:  # published together, as when five windows press Next at once
        coordinator.client.publish(CALL.topic(hall="demo"), encode(one), qos=1)
    wait_until(lambda: len(list(out.glob("*.wav"))) == 5, 60, "five announcements")
    files = sorted(out.glob("*.wav"))
    assert [f.name for f in files] == ["0001-A001-w1.wav", "0002-B002-w6.wav", "0003-C003-w7.wav",
                                       "0004-A004-w2.wav", "0005-D005-w11.wav"]
    # None truncated: each is exactly as long as the same call spoken on its own, twice, with the gap.
    for one, spoken in zip(calls, files, strict=True):
        alone = tmp_path / f"alone-{one.ticket_number}.wav"
        EspeakSpeaker().synthesize(one, alone)
        expected = 2 * soxi_seconds(alone) + agent.announcer.gap_s
        assert soxi_seconds(spoken) == pytest.approx(expected, abs=0.01), spoken.name
        assert soxi_seconds(spoken) > 5.0
    agent.stop()
    coordinator.stop()


def test_recorded_segments(tmp_path: Path) -> None:
    folder = tmp_path / "words"
    folder.mkdir()
    for index, word in enumerate(["请", "A", "零", "一", "号", "到", "三", "号窗口", "办理"]):
        with wave.open(str(folder / f"{word}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes([index]) * 1600)  # 0.1 s each
    out = tmp_path / "seg.wav"
    SegmentSpeaker(folder).synthesize(call("A001", 3), out)
    with wave.open(str(out), "rb") as w:
        assert w.getnframes() == 10 * 800  # 请 A 零 零 一 号 到 三 号窗口 办理
    with pytest.raises(SpeechError, match=r"no recorded segment 五\.wav"):
        SegmentSpeaker(folder).synthesize(call("A005", 3), out)
    assert join_wavs([out, out], tmp_path / "two.wav", gap_s=0.5) == pytest.approx(2.5)


def test_a_missing_player_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without alsa-utils
    with pytest.raises(SpeechError, match=r"'aplay' is not installed \(apt-get install alsa-utils\)"):
        Player().play(tmp_path / "call.wav", 0, call("A001", 3))


def test_switched_off_says_nothing(tmp_path: Path) -> None:
    announcer = Announcer(EspeakSpeaker(), output=None)
    announcer.start()
    announcer.announce(call("A001", 3))
    assert announcer.wait_idle(1) and announcer.spoken == []
    announcer.stop()


def test_status_of_the_agent(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    watch = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.topic(hall="demo", device="VOICE1")])
    agent = AnnouncerAgent(own_broker.settings("VOICE1"), layout, "VOICE1", output="off")
    agent.start()
    status = json.loads(watch.expect(lambda m: json.loads(m.payload)["detail"] == "switched off").payload)
    assert status["state"] == "ok"
    agent.stop()
    watch.stop()


def test_a_missing_player_is_reported_at_start(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    watch = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.topic(hall="demo", device="VOICE1")])
    agent = AnnouncerAgent(own_broker.settings("VOICE1"), layout, "VOICE1", output="device")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without alsa-utils (nor espeak-ng)
    agent.start()
    status = json.loads(watch.expect(lambda m: json.loads(m.payload)["state"] == "fault").payload)
    assert "apt-get install" in status["detail"]
    agent.stop()
    watch.stop()
