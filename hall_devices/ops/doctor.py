"""``hall-devices doctor``: what a technician checks on a hall PC, each finding in Chinese and English
with what to do.

Checks: the broker (host, port, TLS CA and name, sign-in), this PC's clock against the
coordinator's (its live queue summary; a kiosk's or hall screen's account), this PC's device paths, the clock
(NTP/chrony status) and the hall's time zone, disk space, certificate expiry, the event store's
integrity, demo passwords, and the announcer's programs. A failure makes the exit status 1;
a warning alone does not.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hall_devices.layout import AnnouncerDevice, HallScreenDevice, KioskDevice, Layout
from hall_devices.ops.ports import local_ports, port_problem
from hall_devices.ops.reach import check_broker
from hall_devices.settings import Settings

Level = Literal["ok", "warn", "fail"]
MARK = {"ok": "[ OK ]", "warn": "[WARN]", "fail": "[FAIL]"}
MIN_FREE_BYTES = 1 << 30  # an event store grows by tens of MB a year; backups need room too
CERT_WARN = dt.timedelta(days=30)
DEMO_PASSWORDS = ("manager-demo", "clerk-demo")  # hall_devices.demo.up's demo sign-ins


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str

    def line(self) -> str:
        return f"{MARK[self.level]} {self.check}: {self.message}"


@dataclass(frozen=True)
class DoctorScope:
    layout: Layout | None
    devices: set[str] | None  # this PC's devices; None: every device of the layout
    broker_dir: Path | None  # a provisioned broker folder on this PC (the server)
    now: dt.datetime


def run_doctor(settings: Settings, scope: DoctorScope) -> list[Finding]:
    found = [_broker(settings)]
    if found[0].check == "broker/ok" and _follows_the_queue(settings, scope.layout):
        found += _coordinator_clock(settings)
    found += _ports(scope)
    found += _clock(settings, scope)
    found += _disk(settings)
    found += _certificates(settings, scope)
    found += _store(settings)
    found += _demo(settings, scope)
    found += _announcer(scope)
    return found


def _broker(settings: Settings) -> Finding:
    reach = check_broker(settings)
    level: Level = "fail" if not reach.ok else "warn" if reach.step == "in_use" else "ok"
    return Finding(level, f"broker/{reach.step}", reach.message)


def _follows_the_queue(settings: Settings, layout: Layout | None) -> bool:
    """This PC's account is a kiosk's or a hall screen's: they read the queue summary and run on the
    coordinator's clock (a kiosk's ticket deadlines, a screen's countdowns). The broker accepts a
    subscription its ACL then starves, so other accounts would only wait."""
    if layout is None or not settings.broker_username:
        return False
    return any(d.id == settings.broker_username and isinstance(d, (KioskDevice, HallScreenDevice))
               for d in layout.devices)


def _coordinator_clock(settings: Settings) -> list[Finding]:
    from hall_devices.contract import CLOCK_SKEW_MAX_S
    from hall_devices.ops.skew import coordinator_offset

    offset = coordinator_offset(settings)
    if offset.seconds is None:
        return [Finding("warn", "clock/coordinator",
                        "未收到协调服务的排队概况，无法比较时钟（协调服务是否在运行？）/ no queue summary "
                        f"from the coordinator ({offset.why}): cannot compare this PC's clock with "
                        "its; is hall-coordinator running?")]
    seconds = offset.seconds
    side_zh, side = ("慢", "behind") if seconds > 0 else ("快", "ahead of")
    said = (f"本机时钟比协调服务{side_zh} {abs(seconds):.1f} 秒 / this PC's clock is {abs(seconds):.1f} s "
            f"{side} the coordinator's")
    if abs(seconds) > CLOCK_SKEW_MAX_S:
        return [Finding("fail", "clock/coordinator",
                        f"{said}：超过 {CLOCK_SKEW_MAX_S:g} 秒，取号请求会被拒绝。"
                        "请让本机和服务器同步到大厅的时间服务器（chrony，见部署指南）/ more than "
                        f"{CLOCK_SKEW_MAX_S:g} s: the coordinator refuses this PC's ticket requests. "
                        "Point this PC and the server at the hall's time server (chrony, "
                        "docs/deployment.md, time sync)")]
    return [Finding("ok", "clock/coordinator", said)]


def _ports(scope: DoctorScope) -> list[Finding]:
    if scope.layout is None:
        return []
    found = []
    for use in local_ports(scope.layout, scope.devices):
        problem = port_problem(use)
        found.append(Finding("fail", f"device/{use.device_id}", problem) if problem else
                     Finding("ok", f"device/{use.device_id}", f"{use.path} 可打开 / opens"))
    return found


def clock_status(command: str | None) -> tuple[bool | None, str]:
    """(synchronised, where it was read). None: no source could tell.

    ``command`` (settings.clock_status_command) prints ``NTPSynchronized=yes|no`` (timedatectl's
    ``show`` format) or chronyc's ``tracking`` report; without it, timedatectl then chronyc.
    """
    candidates = [shlex.split(command)] if command else [
        ["timedatectl", "show", "-p", "NTPSynchronized"], ["chronyc", "-n", "tracking"]]
    tried = []
    for argv in candidates:
        if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
            tried.append(f"{argv[0]}: not installed")
            continue
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{argv[0]}: {exc}")
            continue
        text = done.stdout
        if "NTPSynchronized=yes" in text:
            return True, argv[0]
        if "NTPSynchronized=no" in text:
            return False, argv[0]
        if "Leap status" in text:
            return "Normal" in text.split("Leap status", 1)[1].splitlines()[0], argv[0]
        said = (done.stderr or done.stdout).strip().splitlines()
        tried.append(f"{argv[0]}: {said[0] if said else 'no answer'}")
    return None, "; ".join(tried)


def _clock(settings: Settings, scope: DoctorScope) -> list[Finding]:
    synced, source = clock_status(settings.clock_status_command)
    if synced is True:
        found = [Finding("ok", "clock", f"时钟已同步（{source}）/ clock synchronised ({source})")]
    elif synced is False:
        found = [Finding("fail", "clock", f"时钟未同步（{source}）：号票时间和营业日会出错。启用 NTP："
                                          "timedatectl set-ntp true，或配置 chrony 指向大厅的时间服务器 / "
                                          f"clock NOT synchronised ({source}): times and the business "
                                          "day go wrong. Enable NTP (timedatectl set-ntp true) or point "
                                          "chrony at the hall's time server")]
    else:
        found = [Finding("warn", "clock", "无法判断时钟是否同步：既无可用的 timedatectl 也无 chronyc / "
                                          f"cannot tell whether the clock is synchronised ({source}): "
                                          "install chrony (apt-get install chrony) or enable "
                                          "systemd-timesyncd")]
    if scope.layout is not None:
        hall = dt.timedelta(hours=scope.layout.hall.utc_offset_hours)
        here = scope.now.astimezone().utcoffset()
        if here != hall:
            found.append(Finding("warn", "timezone",
                                 f"本机时区（UTC{_hours(here)}）与大厅（UTC{_hours(hall)}）不同；"
                                 "叫号时间以大厅时间为准，但日志和定时备份用本机时间。建议 timedatectl "
                                 "set-timezone Asia/Shanghai / this PC's zone differs from the hall's; "
                                 "the hall's is used for tickets, this PC's for logs and timers: "
                                 "timedatectl set-timezone Asia/Shanghai"))
        else:
            found.append(Finding("ok", "timezone",
                                 f"大厅时间 UTC{_hours(hall)} / hall time UTC{_hours(hall)}"))
    return found


def _hours(offset: dt.timedelta | None) -> str:
    hours = (offset or dt.timedelta()).total_seconds() / 3600
    return f"{hours:+g}"


def _disk(settings: Settings) -> list[Finding]:
    folder = settings.data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return [Finding("fail", "disk", f"{settings.data_dir} 所在磁盘只剩 {free >> 20} MB，请清理 / only "
                                        f"{free >> 20} MB free for {settings.data_dir}: free some space "
                                        "(old backups, journal: journalctl --vacuum-size=200M)")]
    return [Finding("ok", "disk", f"{free >> 30} GB free for {settings.data_dir}")]


def _certificates(settings: Settings, scope: DoctorScope) -> list[Finding]:
    from hall_devices.ops.provision import cert_expiry

    files = [settings.broker_ca_file] if settings.broker_tls and settings.broker_ca_file else []
    if scope.broker_dir is not None:
        files += [scope.broker_dir / "tls" / "ca.crt", scope.broker_dir / "tls" / "server.crt"]
    found = []
    for cert in files:
        if cert is None or not cert.is_file():
            continue
        left = cert_expiry(cert) - scope.now
        if left < CERT_WARN:
            found.append(Finding("fail" if left.total_seconds() <= 0 else "warn", f"cert/{cert.name}",
                                 f"{cert} 于 {cert_expiry(cert):%Y-%m-%d} 到期；在服务器上重新执行 broker "
                                 f"provision 续期 / {cert} ends on {cert_expiry(cert):%Y-%m-%d}: renew it "
                                 "(docs/deployment.md, certificates)"))
        else:
            found.append(Finding("ok", f"cert/{cert.name}", f"valid until {cert_expiry(cert):%Y-%m-%d}"))
    return found


def _store(settings: Settings) -> list[Finding]:
    try:
        path = settings.sqlite_path()
    except ValueError:
        return []
    if not path.exists():
        return []  # not the coordinator's PC, or it never ran
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    from hall_devices.coordinator.backup import processes_using

    users = processes_using(path)
    if len(users) > 1:
        pids = ", ".join(map(str, users))
        return [Finding("fail", "store", f"事件库被多个进程同时打开（{pids}）：只能有一个协调服务 / "
                                         f"the event store is open in {len(users)} processes ({pids}): "
                                         "only one coordinator may run on a store; stop the others")]
    if verdict != "ok":
        return [Finding("fail", "store", f"事件库 {path} 已损坏（{verdict}）：停止协调服务，用 store restore "
                                         f"从备份恢复 / the event store {path} is damaged ({verdict}): "
                                         "stop the coordinator and restore the latest backup "
                                         "(hall-devices store restore)")]
    held = f", open in process {users[0]}" if users else ", no process has it open"
    return [Finding("ok", "store", f"{path}: integrity ok{held}")]


def _demo(settings: Settings, scope: DoctorScope) -> list[Finding]:
    found = []
    if settings.web_users.is_file():
        from hall_devices.web.users import UsersError, check_password, load_users

        try:
            users = load_users(settings.web_users)
        except (UsersError, ValueError):
            users = {}
        for user in users.values():
            if any(check_password(p, user.password_hash) for p in DEMO_PASSWORDS):
                found.append(Finding("fail", "demo", f"网页用户 {user.name} 仍使用演示密码，请立即修改 / web "
                                                     f"user {user.name} still has a demo password: "
                                                     "change it now"))
    if scope.broker_dir is not None and (scope.broker_dir / "credentials.toml").is_file():
        text = (scope.broker_dir / "credentials.toml").read_text(encoding="utf-8")
        if any(line.startswith("traffic ") for line in text.splitlines()):
            found.append(Finding("fail", "demo", "代理中仍有演示流量账号 traffic：不带 --demo 重新 "
                                                 "provision / "
                                                 "the broker still has the demo user 'traffic': "
                                                 "provision again without --demo"))
    return found


def _announcer(scope: DoctorScope) -> list[Finding]:
    if scope.layout is None:
        return []
    announcers = [d for d in scope.layout.devices if isinstance(d, AnnouncerDevice)
                  and (scope.devices is None or d.id in scope.devices)]
    found = []
    for device in announcers:
        needed = [("espeak-ng", "espeak-ng")]
        if not device.output.startswith(("wav:", "off")):  # a sound card: played with aplay
            needed.append(("aplay", "alsa-utils"))
        for program, package in needed:
            if shutil.which(program) is None:
                found.append(Finding("fail", f"announcer/{device.id}", f"缺少 {program}，语音无法播报："
                                     "apt-get "
                                     f"install {package} / {program} is missing, nothing can be spoken: "
                                     f"apt-get install {package}"))
        if not found:
            found.append(Finding("ok", f"announcer/{device.id}",
                                 ", ".join(p for p, _ in needed) + " present"))
    return found
