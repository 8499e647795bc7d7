"""What a role of the registry (:mod:`hall_devices.registry`) is, and running one.

A :class:`Role` says what it is called (the ``hall-devices`` sub-command), which layout devices
it runs (``hall-devices up`` asks :func:`hall_devices.registry.role_for`), which options it takes,
and how it is built from the settings, the layout and a :class:`RoleArgs` and run until signalled:
an :class:`Agent` (``start``/``stop``), a :class:`Window` (a Qt app) or a :class:`Server` (runs
until signalled by itself). The CLI adds one sub-command per role (:meth:`Role.add_command`);
``up`` starts a child with :meth:`Role.command` or, in process, builds the same agent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hall_devices.layout import Device, Layout, LayoutError, load_layout
from hall_devices.roles import QtView, Stoppable, StopSignals, run_until_signalled, run_window
from hall_devices.settings import Settings

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QApplication

LAYOUT_HELP = "the hall's layout file (default: HALL_LAYOUT or the settings)"
SERIAL_HELP = "serial URL instead of the layout's (a pty, socket://...)"


@dataclass(frozen=True)
class RoleArgs:
    """What a role is started with: its sub-command's options, or what ``up`` passes.

    ``screen_urls``: bx6 buses, ``ID=URL`` each; ``poll_s``: seconds; ``db``: a PostgreSQL URL.
    """

    device_id: str | None = None
    layout: Path | None = None
    serial: str | None = None
    poll_s: float = 5.0
    screen_urls: tuple[str, ...] = ()
    output: str | None = None
    voice: str = "cmn"
    segments: Path | None = None
    scanner: str | None = None
    windowed: bool = False
    db: str | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RoleArgs:
        """The options argparse parsed (those not given keep the defaults above)."""
        given = {f.name: getattr(args, f.name) for f in fields(cls)
                 if getattr(args, f.name, None) is not None}
        if "screen_urls" in given:  # a repeated option comes as a list; the frozen record keeps a tuple
            given["screen_urls"] = tuple(given["screen_urls"])
        return cls(**given)


@dataclass(frozen=True)
class Option:
    """One option of a role's sub-command, setting the :class:`RoleArgs` field ``dest``."""

    flag: str
    dest: str
    help: str
    kind: Literal["text", "number", "path", "flag", "repeat"] = "text"
    metavar: str | None = None
    required: bool = False

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        shown = self.metavar or self.flag.lstrip("-").upper().replace("-", "_")
        if self.kind == "flag":
            parser.add_argument(self.flag, dest=self.dest, action="store_true", help=self.help)
        elif self.kind == "repeat":
            parser.add_argument(self.flag, dest=self.dest, action="append", metavar=shown, help=self.help)
        else:
            parse: Callable[[str], object] = {"text": str, "number": float, "path": Path}[self.kind]
            parser.add_argument(self.flag, dest=self.dest, type=parse, metavar=shown, required=self.required,
                                help=self.help)

    def argv(self, args: RoleArgs) -> list[str]:
        """This option's words for ``args`` (none when it has its default)."""
        value = getattr(args, self.dest)
        if value == getattr(RoleArgs(), self.dest):
            return []
        if self.kind == "flag":
            return [self.flag]
        if self.kind == "repeat":
            return [word for item in value for word in (self.flag, item)]
        return [self.flag, str(value)]


SERIAL = Option("--serial", "serial", SERIAL_HELP)
HALL_LAYOUT = Option("--layout", "layout", LAYOUT_HELP, "path")
WINDOWED = Option("--windowed", "windowed", "a window instead of full screen", "flag")
OUTPUT = Option("--output", "output", "off, wav:FOLDER or device[:NAME] (default: the layout's)")
VOICE = Option("--voice", "voice", "espeak-ng voice (cmn: Mandarin)")
SEGMENTS = Option("--segments", "segments", "folder of recorded WAV words instead of espeak-ng", "path")


@dataclass(frozen=True)
class Target:
    """The layout devices a role runs: one ``kinds`` device named by ``flag`` (``--id``, ``--bus``);
    ``word`` names the kind in messages. ``owns``: whether ``up`` runs this role for a device of
    those kinds (a hall screen on an LED bus is its bus's)."""

    flag: str
    help: str
    kinds: tuple[type, ...]
    word: str
    owns: Callable[[Device], bool] = lambda _device: True

    def runs(self, device: Device) -> bool:
        """Whether ``up`` runs this role for ``device``."""
        return isinstance(device, self.kinds) and self.owns(device)


@dataclass(frozen=True)
class Context:
    """What a role is built from: the settings, its arguments and, for a role of a hall, the layout
    and its file (``found`` and ``layout_path`` are None only for the region; asking a region role's
    context for them raises :class:`RoleError`)."""

    settings: Settings
    args: RoleArgs
    layout_path: Path | None
    found: Layout | None

    @property
    def layout(self) -> Layout:
        if self.found is None:
            raise RoleError("this role runs without a hall layout")
        return self.found

    @property
    def layout_file(self) -> Path:
        if self.layout_path is None:
            raise RoleError("this role runs without a hall layout")
        return self.layout_path

    @property
    def device_id(self) -> str:
        if self.args.device_id is None:
            raise RoleError("no device id given")
        return self.args.device_id


class RoleError(Exception):
    """A role cannot be built; ``code`` is the process's exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Agent:
    """Built, started, run until SIGINT/SIGTERM, stopped; ``failure`` starts the one line printed
    when it cannot be built."""

    build: Callable[[Context], Stoppable]
    failure: str


@dataclass(frozen=True)
class Window:
    """A Qt app: its view built once Qt's application exists, run by :func:`roles.run_window`."""

    build: Callable[[Context, QApplication], QtView]


@dataclass(frozen=True)
class Server:
    """Runs in the calling thread until signalled by itself; its exit code."""

    run: Callable[[Context], int]


@dataclass(frozen=True)
class Role:
    """One role (see the module's text); ``log`` names its log file in ``up``'s data folder."""

    name: str
    help: str
    body: Agent | Window | Server
    target: Target | None = None
    options: tuple[Option, ...] = ()
    in_hall: bool = True
    log: str = ""
    layout_help: str = LAYOUT_HELP

    @property
    def qt(self) -> bool:
        return isinstance(self.body, Window)

    def all_options(self) -> tuple[Option, ...]:
        target = self.target
        device = (Option(target.flag, "device_id", target.help, required=True),) if target else ()
        hall = (replace(HALL_LAYOUT, help=self.layout_help),) if self.in_hall else ()
        return (*device, *self.options, *hall)

    def argv(self, args: RoleArgs) -> list[str]:
        """The ``hall-devices`` words that run this role with ``args``."""
        return [self.name, *(word for option in self.all_options() for word in option.argv(args))]

    def command(self, args: RoleArgs) -> list[str]:
        """The command line of a child process running this role with ``args`` (this Python)."""
        return [sys.executable, "-m", "hall_devices.cli", *self.argv(args)]

    def add_command(self, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """This role's sub-command: its options, and running it with :func:`run_role`."""
        parser = commands.add_parser(self.name, help=self.help)
        for option in self.all_options():
            option.add_to(parser)
        parser.set_defaults(run=_runner(self), role=self.name)

    def log_name(self, device_id: str | None) -> str:
        stem = self.log or self.name
        return f"{stem}-{device_id}.log" if device_id else f"{stem}.log"


def load_or_say(path: Path) -> Layout | None:
    """The layout at ``path``, or None after one line on stderr saying what is wrong with it."""
    try:
        return load_layout(path)
    except LayoutError as exc:
        print(f"布局文件有误 / layout has problems: {exc}", file=sys.stderr)
        return None


def _context(role: Role, settings: Settings, args: RoleArgs) -> Context | None:
    if not role.in_hall:
        return Context(settings, args, None, None)
    path = args.layout or settings.layout
    layout = load_or_say(path)
    if layout is None:
        return None
    target = role.target
    if target is not None:
        device = next((d for d in layout.devices if d.id == args.device_id), None)
        if not isinstance(device, target.kinds):
            print(f"{args.device_id!r} is not a {target.word} of the layout", file=sys.stderr)
            return None
    return Context(settings, args, path, layout)


def run_role(role: Role, settings: Settings, args: RoleArgs) -> int:
    """Build ``role`` and run it until signalled; the process's exit code."""
    body = role.body
    if isinstance(body, Window):
        stop = StopSignals()  # first: a stop that comes while Qt loads or the window is built is kept
        window = _context(role, settings, args)
        if window is None:
            return 1
        return run_window(lambda app: body.build(window, app), args.windowed, stop)
    context = _context(role, settings, args)
    if context is None:
        return 1
    if isinstance(body, Server):
        return body.run(context)
    try:
        agent = body.build(context)
    except (KeyError, ValueError, OSError, RoleError) as exc:
        print(f"{body.failure}: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, RoleError) else 1
    return run_until_signalled(agent)


def _runner(role: Role) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        return run_role(role, settings, RoleArgs.from_namespace(args))
    return run
