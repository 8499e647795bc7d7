"""The voice announcer: "请 A 零零一 号 到 三 号窗口 办理", spoken in order, never cut off.

The sentence comes composed in the call (``Call.speech``, by the coordinator); the announcer only
turns it into sound.

Calls go into one queue and one worker speaks them one after another, each ``repeat`` times, the
next only after the last has finished playing: calls that arrive together are all heard, in the
order they came (the most common complaint about peer systems is a new call cutting one off).

Speech comes from espeak-ng's Mandarin voice or from recorded segments (a folder of WAV files named
after the words: 请.wav, 号.wav, 零.wav … 九.wav, A.wav …). Output goes to WAV files (one per
announcement, for checking and archiving), to a sound device (a player command), or nowhere.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hall_devices.contract import Call

log = logging.getLogger(__name__)
DIGITS = "零一二三四五六七八九"  # a run of these is a ticket's digits, one segment each


class SpeechError(Exception):
    """Speech could not be made or played; the message names the tool or segment at fault."""


def speech_words(call: Call) -> list[str]:
    """The call's words for recorded segments: the spoken sentence the coordinator composed
    (``Call.speech``), split at spaces, ticket digits one by one."""
    words: list[str] = []
    for word in call.speech.zh.split():
        words += list(word) if all(c in DIGITS for c in word) else [word]
    return words


def speech_text(call: Call) -> str:
    """What espeak-ng is given: the coordinator's sentence, "请 A 零零一 号 到 三 号窗口 办理"."""
    return call.speech.zh


class Speaker(Protocol):
    def synthesize(self, call: Call, path: Path) -> None: ...


@dataclass(frozen=True)
class EspeakSpeaker:
    voice: str = "cmn"
    words_per_minute: int = 150

    def synthesize(self, call: Call, path: Path) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
        done = subprocess.run([binary, "-v", self.voice, "-s", str(self.words_per_minute), "-w", str(path),
                               speech_text(call)], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            raise SpeechError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()}")


@dataclass(frozen=True)
class SegmentSpeaker:
    """Recorded words, joined: each word of the call must have its WAV file in ``folder``."""

    folder: Path

    def synthesize(self, call: Call, path: Path) -> None:
        parts = []
        for word in speech_words(call):
            # A multi-character reading (十二) may be recorded whole or character by character.
            candidates = [self.folder / f"{word}.wav"] if (self.folder / f"{word}.wav").exists() else [
                self.folder / f"{c}.wav" for c in word]
            missing = [c.name for c in candidates if not c.exists()]
            if missing:
                raise SpeechError(f"no recorded segment {', '.join(missing)} in {self.folder}")
            parts += candidates
        join_wavs(parts, path)


def join_wavs(parts: list[Path], out: Path, gap_s: float = 0.0) -> float:
    """Concatenate WAV files of one format, with silence between; returns the duration."""
    frames, params = [], None
    for part in parts:
        with wave.open(str(part), "rb") as source:
            if params is None:
                params = source.getparams()
            elif source.getparams()[:3] != params[:3]:
                raise SpeechError(f"{part.name} has another format than {parts[0].name}")
            frames.append(source.readframes(source.getnframes()))
    if params is None:
        raise SpeechError("nothing to join")
    silence = b"\0" * int(params.framerate * gap_s) * params.sampwidth * params.nchannels
    with wave.open(str(out), "wb") as target:
        target.setparams(params)
        target.writeframes(silence.join(frames))
        return target.getnframes() / params.framerate


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as source:
        return source.getnframes() / source.getframerate()


class Output(Protocol):
    def play(self, path: Path, index: int, call: Call) -> None: ...


@dataclass(frozen=True)
class WavFolder:
    """Keeps every announcement as ``NNNN-<ticket>-w<window>.wav``, in the order spoken."""

    folder: Path

    def play(self, path: Path, index: int, call: Call) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.folder / f"{index:04d}-{call.ticket_number}-w{call.window}.wav")


@dataclass(frozen=True)
class Player:
    """Plays through a command (``aplay -q -D {device} {file}``) and waits until it has finished."""

    device: str = "default"
    command: tuple[str, ...] = ("aplay", "-q", "-D", "{device}", "{file}")

    def play(self, path: Path, index: int, call: Call) -> None:
        args = [part.format(device=self.device, file=path) for part in self.command]
        if shutil.which(args[0]) is None:
            hint = " (apt-get install alsa-utils)" if args[0] == "aplay" else ""
            raise SpeechError(f"player {args[0]!r} is not installed{hint}")
        done = subprocess.run(args, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SpeechError(f"{args[0]} failed: {done.stderr.decode(errors='replace').strip()}")


@dataclass
class Spoken:
    call_id: str
    text: str
    seconds: float


@dataclass
class Announcer:
    speaker: Speaker
    output: Output | None  # None: switched off
    repeat: int = 2
    gap_s: float = 0.8
    spoken: list[Spoken] = field(default_factory=list)
    _queue: queue.Queue[Call | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _idle: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def announce(self, call: Call) -> None:
        if self.output is not None:
            self._idle.clear()
            self._queue.put(call)

    def wait_idle(self, timeout_s: float) -> bool:
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        with tempfile.TemporaryDirectory(prefix="hall-voice-") as tmp:
            work = Path(tmp)
            while True:
                call = self._queue.get()
                if call is None:
                    return
                try:
                    self._speak(call, work)
                except SpeechError as exc:
                    log.error("call %s not announced: %s", call.call_id, exc)
                except (OSError, subprocess.SubprocessError) as exc:
                    log.error("call %s not announced: %s", call.call_id, exc)
                except Exception:  # a bug must not silence every later call
                    log.exception("call %s (ticket %s) not announced: unexpected error", call.call_id,
                                  call.ticket_number)
                if self._queue.empty():
                    self._idle.set()

    def _speak(self, call: Call, work: Path) -> None:
        assert self.output is not None
        once, whole = work / "once.wav", work / "whole.wav"
        self.speaker.synthesize(call, once)
        seconds = join_wavs([once] * self.repeat, whole, self.gap_s)
        self.output.play(whole, len(self.spoken) + 1, call)
        self.spoken.append(Spoken(call.call_id, speech_text(call), seconds))
