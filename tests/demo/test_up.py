"""README command 1: `hall-devices up` brings the hall up, tickets flow, and it stops cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import EXAMPLE, ROOT


def test_up_runs_the_hall_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from hall_devices.layout import load_layout

    data = tmp_path / "hall"
    hall = load_layout(EXAMPLE).hall
    first_day = hall.business_day(datetime.now(UTC))  # a run across hall midnight spans two days
    with subprocess.Popen(
            [sys.executable, "-m", "hall_devices.cli", "up", "--layout", str(EXAMPLE),
             "--data-dir", str(data), "--speed", "600", "--duration", "40"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up, _stopped(up):
        assert up.stdout is not None
        url, head = "", ""
        for line in up.stdout:  # the web's address is printed as it starts
            head += line
            if line.startswith("web: "):
                url = line.split()[1]
                break
        assert url, "no web address printed"
        page = _get(f"{url}/login")
        assert "登录 Sign in" in page
        # A second shell: the manager signs in and sees tickets called at the windows.
        import http.cookiejar
        import json as json_
        import urllib.parse
        import urllib.request

        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"username": "manager", "password": "manager-demo"}).encode()
        signing_in = urllib.request.Request(f"{url}/login", data=form, headers={"Origin": url})
        # Liveness bounds, not speed: on a CI machine with both cores busy a sign-in (a password
        # hash) has taken over 5 s.
        browser.open(signing_in, timeout=20).read()  # a browser's form post carries its Origin
        called: list[str] = []
        deadline = time.monotonic() + 30  # slow when the suite loads both cores
        while not called and time.monotonic() < deadline:
            state = json_.loads(browser.open(f"{url}/state.json", timeout=10).read())
            called = [w["ticket_number"] for w in state["windows"] if w.get("ticket_number")]
            time.sleep(0.3)
        assert called, "the dashboard showed no ticket at any window"
        signed_in = [w for w in state["windows"] if w.get("clerk_id")]
        assert signed_in and all(w["clerk_name"] != w["clerk_id"] for w in signed_in), signed_in  # names
        out, err = up.communicate(timeout=90)
    done = subprocess.CompletedProcess(up.args, up.returncode, head + out, err)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "broker: Mosquitto" in done.stdout and "stopped." in done.stdout
    assert "demo only: plain HTTP on this PC" in head
    # The kiosk and TV run either way, and say where; the ticket QR opens this PC's web.
    kiosk = next(line for line in head.splitlines() if line.startswith("kiosk K1: "))
    assert ("offscreen" in kiosk) == (not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))
    assert f"ticket QR codes: {url}/t/{{token}}" in head
    assert 'ticket_page_url = "' + url in (data / "demo-layout.toml").read_text(encoding="utf-8")
    runs = [d for d in (data / "voice").iterdir() if d.is_dir()]
    assert len(runs) == 1  # this run's voice files in a folder of their own
    assert (data / "demo-users.toml").exists() and not (data / "users.toml").exists()
    # The demo clerk may open every window the demo uses (a clerk account carries its windows).
    from hall_devices.web.users import load_users

    demo_users = load_users(data / "demo-users.toml")
    assert demo_users["clerk"].windows == tuple(w.number for w in load_layout(EXAMPLE).windows)
    assert demo_users["manager"].windows == ()
    # The agents' state files and the broker's log are data files: 0600 (issue 15 deliverable 7).
    made = [*data.rglob("printer-*.sqlite3"), *data.rglob("pads-*.sqlite3"), *data.rglob("mosquitto.log")]
    assert {p.name.split("-")[0] for p in made} >= {"printer", "pads", "mosquitto.log"}, made
    assert [p for p in made if p.stat().st_mode & 0o077] == []
    lines = [line for line in done.stdout.splitlines() if "取号 issued" in line]
    assert lines and "issued 0 " not in lines[-1], done.stdout[-2000:]
    # Each line starts with the hall's time, as the pages, not this PC's.
    stamped = datetime.strptime(lines[-1].split()[0], "%H:%M:%S").time()
    hall_now = datetime.now(UTC) + timedelta(hours=hall.utc_offset_hours)
    gap = abs(datetime.combine(hall_now.date(), stamped) - hall_now.replace(tzinfo=None)).total_seconds()
    assert min(gap, 86_400 - gap) < 300, (lines[-1], hall_now)
    # A booked applicant checks in with an ID card on the simulated reader (docs/appointments.md).
    assert "刷证签到 card check-ins" in lines[-1] and "card check-ins 0 " not in lines[-1], lines[-1]
    # Nothing of this hall is still running.
    left = subprocess.run(["pgrep", "-af", str(data)], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", f"left behind: {left.stdout}"
    # The store holds what happened; the report reads it, over the hall days the run lay in.
    last_day = hall.business_day(datetime.now(UTC))
    report = subprocess.run(
        [sys.executable, "-m", "hall_devices.cli", "report", "--date", first_day, "--to", last_day,
         "--format", "json",
         "--store", str(data / "coordinator.sqlite3"), "--layout", str(EXAMPLE)],
        capture_output=True, text=True, timeout=60, check=True)
    total = json.loads(report.stdout)["rows"][0]
    assert total["issued"] > 0 and total["served"] > 0 and total["rated"] > 0


def test_every_clerk_the_demo_signs_in_has_a_name() -> None:
    from hall_devices.demo.traffic import clerk_id
    from hall_devices.layout import load_layout

    layout = load_layout(EXAMPLE)
    named = {member.id: member.name for member in layout.staff}
    assert [w.number for w in layout.windows if clerk_id(w.number) not in named] == []
    assert "clerk" in named  # the demo's web account, at the console
    assert {"Z0601": "张敏", "clerk3": "李强"}.items() <= named.items()  # what tests sign in
    assert len(set(named.values())) == len(named)  # no two clerks share a name


def test_a_killed_up_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL gives `up` no chance to stop its children; the kernel's parent-death signal does."""
    data = tmp_path / "hall"
    with subprocess.Popen(
            [sys.executable, "-m", "hall_devices.cli", "up", "--layout", str(EXAMPLE),
             "--data-dir", str(data), "--no-traffic"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as up, _stopped(up):
        assert up.stdout is not None
        for line in up.stdout:
            if line.startswith("Ctrl-C stops everything"):
                break
        children = subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True,
                                  check=False).stdout.split()
        # broker, coordinator, web, 2 printers, LED bus, pad bus, announcer
        assert len(children) >= 8, "the hall's broker, coordinator and agents were not running"
        up.kill()
        up.wait(10)
        deadline = time.monotonic() + 15
        left = _alive(children)
        while left and time.monotonic() < deadline:
            time.sleep(0.3)
            left = _alive(children)
        assert left == [], f"left behind after SIGKILL of up: {left}"


def _alive(pids: list[str]) -> list[str]:
    """The command lines of those of ``pids`` still running (a zombie has finished)."""
    alive = []
    for pid in pids:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
    return alive


def test_ctrl_c_in_a_terminal_stops_the_hall_in_order(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group, not only `up`.

    The broker and agents must not take it themselves: `up` stops the agents first, so each says
    offline while the broker still listens, and only then the broker.
    """
    data = tmp_path / "hall"
    with subprocess.Popen(
            [sys.executable, "-m", "hall_devices.cli", "up", "--layout", str(EXAMPLE),
             "--data-dir", str(data), "--no-traffic"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True) as up, _stopped(up):  # a group of its own, like a terminal's job
        assert up.stdout is not None
        for line in up.stdout:
            if line.startswith("Ctrl-C stops everything"):
                break
        os.killpg(up.pid, signal.SIGINT)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err[-2000:]
    assert "stopped." in out
    logs = {log.name: log.read_text(errors="replace") for log in data.glob("*.log")}
    assert {"coordinator.log", "printer-P1.log", "leds-L1.log", "pads-KB1.log"} <= set(logs)
    unconfirmed = [name for name, text in logs.items() if "not confirmed before exit" in text]
    assert unconfirmed == [], f"stopped after the broker: {unconfirmed}"
    broker_log = (data / "broker" / "mosquitto.log").read_text(errors="replace")
    for client in ("coordinator", "P1", "P2", "L1", "KB1", "VOICE1"):
        assert f"Client {client} disconnected" in broker_log, f"{client} did not disconnect cleanly"


@contextlib.contextmanager
def _stopped(up: subprocess.Popen[str]) -> Iterator[None]:
    """However the test ends, the hall it started is stopped the way a user would (Ctrl-C)."""
    try:
        yield
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()


def _get(url: str) -> str:
    import urllib.request

    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_up_drives_a_hall_of_bx6_network_screens(tmp_path: Path) -> None:
    """The layout option protocol = "bx6": simulated BX-6E controllers on TCP ports, the BX-6 agent
    (in process here), and the calls drawn on the window screens as pixels."""
    from hall_devices.demo.sim.bx6 import Bx6Simulator
    from hall_devices.demo.up import Hall, UpOptions
    from hall_devices.layout import load_layout
    from hall_devices.leds.render import ensure_qt, render_text
    from tests.support import wait_until

    text = EXAMPLE.read_text(encoding="utf-8").replace('protocol = "bx"', 'protocol = "bx6"').replace(
        'bus = "L1"', 'bus = "L1"\nurl = "socket://192.0.2.10:5005"')
    path = tmp_path / "hall-bx6.toml"
    path.write_text(text, encoding="utf-8")
    layout = load_layout(path)
    ensure_qt()
    hall = Hall(layout, UpOptions(layout_path=path, data_dir=tmp_path / "hall", speed=600, in_process=True,
                                  quiet=True))
    (tmp_path / "hall").mkdir()
    try:
        hall.start_broker()
        hall.start_coordinator()
        hall.start_devices()
        hall.start_clients()
        sims: list[Bx6Simulator] = hall.net_screens
        assert len(sims) == 23  # every screen of L1, each its own controller
        closed = render_text("暂停服务", 128, 32)
        window_sims = [s for s in sims if s.address != 200]
        # A window screen shows what its window's state says (a clerk signed in), drawn in pixels.
        wait_until(lambda: any(s.bitmap(0) not in (None, closed) for s in window_sims), 30,
                   what="a window screen showing more than 暂停服务")
        assert all(s.bitmap(0) is not None for s in sims)  # every controller was written
        assert all(s.state.bad == 0 for s in sims)
    finally:
        hall.stop()


def test_the_demo_ticket_qr_points_at_this_pcs_web() -> None:
    from hall_devices.demo.up import with_ticket_page

    url = "http://127.0.0.1:8080/t/{token}"
    plain = 'title = "x"\n'
    assert with_ticket_page(plain, url) == f'title = "x"\n\n[policy]\nticket_page_url = "{url}"\n'
    table = '[policy]\nrecall_limit = 3\n\n[[windows]]\n'
    expected = f'[policy]\nticket_page_url = "{url}"\nrecall_limit = 3\n\n[[windows]]\n'
    assert with_ticket_page(table, url) == expected
    given = '[policy]\nticket_page_url = "http://hall.local:8080/t/{token}"\n'
    assert with_ticket_page(given, url) == f'[policy]\nticket_page_url = "{url}"\n'


def test_the_demo_kiosk_reads_a_simulated_scanner_not_the_halls_port(tmp_path: Path) -> None:
    """The example's scanner is /dev/hall/scanner-k1, a real hall's port: the demo gives the kiosk a
    simulated scanner on a pty instead, as it does every other serial device."""
    import serial

    from hall_devices.demo.up import Hall, UpOptions
    from hall_devices.layout import KioskDevice, load_layout

    layout = load_layout(EXAMPLE)
    k1, k2 = layout.device("K1"), layout.device("K2")
    assert isinstance(k1, KioskDevice) and k1.scanner_serial == "/dev/hall/scanner-k1"
    assert isinstance(k2, KioskDevice) and k2.scanner_serial is None
    hall = Hall(layout, UpOptions(EXAMPLE, tmp_path, quiet=True))
    try:
        args, said = hall._stand_in(k1)
        assert args.scanner is not None and Path(args.scanner).parent == tmp_path / "dev", args
        assert f"simulated barcode scanner at {args.scanner}" in said
        with serial.serial_for_url(args.scanner, timeout=5) as port:
            hall.scanners[0].scan("YY2026B")
            assert port.read_until(b"\r") == b"YY2026B\r"
        assert hall._stand_in(k2)[0].scanner is None  # a kiosk without one gets none
    finally:
        hall.stop()
    assert not (tmp_path / "dev" / "scanner-K1").exists()  # stopped with the hall


def test_the_commands_up_prints_run_from_the_shell_it_was_started_in(tmp_path: Path) -> None:
    """`./hall up` runs .venv/bin/hall-devices, which is not on a new shell's PATH: the statistics
    line it prints must name the command so that it runs when pasted (the README's
    `.venv/bin/hall-devices report ...`), and plain `hall-devices` only where that is on the PATH."""
    from hall_devices.demo.up import own_command

    shown = own_command(path="", cwd=ROOT)  # a shell without the venv on its PATH
    assert shown != "hall-devices" and "/" in shown
    runs = subprocess.run([shown, "--version"], cwd=ROOT, env={"PATH": ""}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert runs.returncode == 0 and "hall-devices" in runs.stdout, runs
    on_path = str((ROOT / shown).parent)  # ROOT / an absolute path is that path
    assert own_command(path=on_path, cwd=tmp_path) == "hall-devices"  # activated: the short name
