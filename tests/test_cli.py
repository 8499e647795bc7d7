"""The command line: a port already in use is one clear line, not a traceback; every option and
argument of every sub-command says what it is for; the message catalog looks a code up."""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hall_devices.cli import build_parser
from hall_devices.ops.broker import free_port
from hall_devices.web.users import add_user
from tests.conftest import EXAMPLE
from tests.support import HallBroker


def _hold_a_port() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hall_devices.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_web_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    add_user(users, "manager", "manager", "manager-password")
    with _hold_a_port() as holder:
        port = holder.getsockname()[1]
        done = _run(["web", "--layout", str(EXAMPLE)], HALL_WEB_PORT=str(port), HALL_WEB_HOST="127.0.0.1",
                    HALL_WEB_USERS=str(users), HALL_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"网页无法启动 / web cannot start: port {port} on 127.0.0.1 is already in use by another program "
        "(set HALL_WEB_PORT)"]


@contextmanager
def _demo_web(tmp_path: Path, broker: HallBroker) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`hall-devices web` (demo mode: plain HTTP on 127.0.0.1) on its own port, listening."""
    users = tmp_path / "users.toml"
    add_user(users, "mgr", "manager", "manager-pass")
    port = free_port()
    env = {**os.environ, "HALL_BROKER_PORT": str(broker.port), "HALL_BROKER_USERNAME": "web",
           "HALL_BROKER_PASSWORD": broker.credentials["web"], "HALL_WEB_PORT": str(port),
           "HALL_WEB_HOST": "127.0.0.1", "HALL_WEB_USERS": str(users), "HALL_WEB_DEMO": "1",
           "HALL_DATA_DIR": str(tmp_path / "web"), "HALL_LOG_LEVEL": "WARNING"}
    with subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "web", "--layout", str(EXAMPLE)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as web:
        try:
            while not _listening(port):
                assert web.poll() is None, web.communicate()[1]
                time.sleep(0.1)
            yield web, port
        finally:
            if web.poll() is None:
                web.kill()
                web.communicate()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _live_page(port: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A manager's live page: signed in, its event stream open."""
    signing_in = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    form = urllib.parse.urlencode({"username": "mgr", "password": "manager-pass"})
    signing_in.request("POST", "/login", form, {"Origin": f"http://127.0.0.1:{port}",
                                                 "Content-Type": "application/x-www-form-urlencoded"})
    answer = signing_in.getresponse()
    assert answer.status == 303, answer.read()
    cookie = str(answer.headers["Set-Cookie"]).split(";", 1)[0]
    signing_in.close()
    live = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    live.request("GET", "/events", headers={"Cookie": cookie})
    stream = live.getresponse()
    assert stream.status == 200
    return live, stream


def test_ctrl_c_ends_a_live_pages_stream_at_once(tmp_path: Path, own_broker: HallBroker) -> None:
    with _demo_web(tmp_path, own_broker) as (web, port):
        live, stream = _live_page(port)
        web.send_signal(signal.SIGINT)
        _, err = web.communicate(timeout=30)
        assert stream.read().startswith(b"retry: 2000")  # ended whole: the last chunk came
        live.close()
    assert web.returncode == 0
    # Not waited for until uvicorn's graceful shutdown ran out ("Cancel 1 running task(s)").
    assert err.splitlines() == ["网页已停止 / web stopped"]


def test_a_second_ctrl_c_ends_the_web_quietly(tmp_path: Path, own_broker: HallBroker) -> None:
    with _demo_web(tmp_path, own_broker) as (web, port):
        origin = f"http://127.0.0.1:{port}"
        # Open when Ctrl-C comes: a live page's event stream, and a form whose body is still on
        # its way (its request waits for the rest: uvicorn's graceful shutdown waits for it).
        live, _stream = _live_page(port)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(f"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\nContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=".encode())
        web.send_signal(signal.SIGINT)
        while _listening(port):  # the shutdown has begun when nothing new is accepted
            time.sleep(0.05)
        web.send_signal(signal.SIGINT)  # impatient: the open requests are not waited for
        _, err = web.communicate(timeout=30)
        slow.close()
        live.close()
    assert web.returncode == 0
    assert err.splitlines() == ["网页已停止 / web stopped"]  # one line: no uvicorn traceback


def test_up_on_a_broker_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with _hold_a_port() as holder:
        port = holder.getsockname()[1]
        done = _run(["up", "--layout", str(EXAMPLE), "--port", str(port), "--data-dir", str(tmp_path),
                     "--no-traffic"])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"大厅无法启动 / the hall cannot start: port {port} is already in use by another program "
        "(another broker?): choose another port"]


def test_an_exception_in_a_qt_slot_is_logged_and_the_gui_goes_on() -> None:
    script = (
        "import sys\n"
        "from PyQt6.QtCore import QTimer\n"
        "from PyQt6.QtWidgets import QApplication\n"
        "from hall_devices.roles import keep_qt_running\n"
        "app = QApplication(sys.argv[:1])\n"
        "keep_qt_running()\n"
        "def bad():\n"
        "    raise RuntimeError('a slot bug')\n"
        "QTimer.singleShot(0, bad)\n"
        "QTimer.singleShot(200, lambda: (print('still running', flush=True), app.quit()))\n"
        "sys.exit(app.exec())\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "still running\n"
    assert "unhandled error in the GUI thread; carrying on" in done.stderr
    assert "RuntimeError: a slot bug" in done.stderr


def test_store_dead_letters_lists_them_newest_first(tmp_path: Path) -> None:
    from hall_devices.coordinator.store import DeadLetter, EventStore

    path = tmp_path / "store.sqlite3"
    store = EventStore(path)
    store.commit([], [], [DeadLetter("2026-11-23T01:00:00+00:00", "hall/demo/window/6/rating", "rating:r-1",
                                     '{"rating_id": "r-1"}', "TypeError: can't compare"),
                          DeadLetter("2026-11-23T02:00:00+00:00", "hall/demo/window/²/command",
                                     "window_command:c-2", '{"command_id": "c-2"}', "ValueError: int")])
    store.close()
    done = _run(["store", "dead-letters", "--store", str(path), "--layout", str(EXAMPLE)])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "未能处理的消息（最新在前）/ dead letters, newest first: 2"
    assert lines[1].startswith("2026-11-23 10:00:00  hall/demo/window/²/command  window_command:c-2")  # UTC+8
    assert "rating:r-1" in lines[4]
    assert lines[2].strip() == "ValueError: int"


def undocumented(parser: argparse.ArgumentParser, path: str = "hall-devices") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help() -> None:
    parser = build_parser()
    assert undocumented(parser) == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"up", "web-user", "kiosk"} <= set(commands.choices)  # the walk sees the sub-commands


def test_messages_looks_a_code_up_in_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.cli import main

    assert main(["messages", "unknown_appointment"]) == 0
    out = capsys.readouterr().out
    assert "预约码无效，请核对预约码或到咨询台咨询" in out and "this appointment code is not known" in out
    assert main(["messages", "no_such_code"]) == 1
    assert "no such code" in capsys.readouterr().err


def test_ctrl_c_while_the_web_starts_is_one_line(tmp_path: Path) -> None:
    # The layout is a FIFO that the test holds open without writing: `web` is then stopped inside
    # its start (reading the layout), before uvicorn's handlers, at a moment the test knows.
    layout = tmp_path / "layout.toml"
    os.mkfifo(layout)
    env = {**os.environ, "HALL_WEB_PORT": str(free_port()), "HALL_WEB_HOST": "127.0.0.1",
           "HALL_DATA_DIR": str(tmp_path / "web"), "HALL_LOG_LEVEL": "WARNING"}
    with subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "web", "--layout", str(layout)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as web:
        while True:  # a FIFO opens for writing (without blocking) once its reader has it open
            try:
                writer = os.open(layout, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert web.poll() is None, web.communicate()
                time.sleep(0.05)
        try:
            web.send_signal(signal.SIGINT)
            _, err = web.communicate(timeout=30)
        finally:
            os.close(writer)
    assert err.splitlines() == ["已中断 / interrupted"]
    assert web.returncode == 130
