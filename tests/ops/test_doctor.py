"""doctor: each way a hall PC goes wrong gets its own message (Chinese and English) and what to do.

Against a real Mosquitto with a TLS listener whose certificate names ``hall-server.local`` and
``localhost`` (not ``127.0.0.1``), a foreign CA, real ptys, and clock-status commands that print
what timedatectl and chronyc print.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hall_devices.cli import main
from hall_devices.contract import QUEUE_SUMMARY
from hall_devices.layout import Layout
from hall_devices.ops.broker import free_port
from hall_devices.ops.doctor import DoctorScope, Finding, clock_status, run_doctor
from hall_devices.ops.provision import make_tls, provision
from hall_devices.ops.reach import check_broker
from hall_devices.settings import Settings
from tests.conftest import EXAMPLE
from tests.support import HallBroker, start_hall_broker


@pytest.fixture(scope="module")
def named_broker(tmp_path_factory: pytest.TempPathFactory, layout: Layout) -> Iterator[HallBroker]:
    directory = tmp_path_factory.mktemp("named-broker")
    provision(layout, directory, tls_hosts=["hall-server.local", "localhost"], demo=True)
    broker = start_hall_broker(layout, directory)  # provisions again: keeps that certificate
    yield broker
    broker.process.stop()


def _tls(broker: HallBroker, **changes: Any) -> Settings:
    fields: dict[str, Any] = {"hall_id": "demo", "broker_host": "localhost", "broker_port": broker.tls_port,
                              "broker_username": "P1", "broker_tls": True,
                              "broker_password": SecretStr(broker.credentials["P1"]),
                              "broker_ca_file": broker.directory / "tls" / "ca.crt"}
    fields.update(changes)
    return Settings(**fields)


def test_the_right_settings_sign_in(named_broker: HallBroker) -> None:
    reach = check_broker(_tls(named_broker))
    assert reach.ok and reach.step == "ok" and "'P1'" in reach.message


def test_each_broker_failure_has_its_own_message(named_broker: HallBroker, tmp_path: Path) -> None:
    make_tls(tmp_path / "other", ["localhost"])
    cases = {
        "host": _tls(named_broker, broker_host="hall-server.invalid"),
        "port": _tls(named_broker, broker_port=free_port()),
        "tls_ca": _tls(named_broker, broker_ca_file=tmp_path / "other" / "ca.crt"),
        "tls_name": _tls(named_broker, broker_host="127.0.0.1"),
        "auth": _tls(named_broker, broker_password=SecretStr("not-the-password")),
    }
    messages = {}
    for step, settings in cases.items():
        reach = check_broker(settings)
        assert not reach.ok and reach.step == step, (step, reach)
        messages[step] = reach.message
    assert len(set(messages.values())) == len(cases)
    assert "HALL_BROKER_HOST" in messages["host"] and "无法解析" in messages["host"]
    assert "firewall" in messages["port"]
    assert "copy the server's current ca.crt" in messages["tls_ca"]
    assert "--tls-host 127.0.0.1" in messages["tls_name"]
    assert "wrong username or password" in messages["auth"] and "密码错误" in messages["auth"]
    missing_ca = check_broker(_tls(named_broker, broker_ca_file=tmp_path / "none" / "ca.crt"))
    assert missing_ca.step == "tls_ca" and "not found" in missing_ca.message
    plain_on_tls = check_broker(_tls(named_broker, broker_tls=False))
    assert not plain_on_tls.ok and plain_on_tls.step == "mqtt"


def _command(output: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(f'print({output!r})')}"


def test_the_clock_status_is_read_and_said_plainly() -> None:
    assert clock_status(_command("NTPSynchronized=no"))[0] is False
    assert clock_status(_command("NTPSynchronized=yes"))[0] is True
    chrony = "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n"
    assert clock_status(_command(chrony))[0] is False
    assert clock_status(_command(chrony.replace("Not synchronised", "Normal")))[0] is True
    unknown, said = clock_status("/nonexistent/timedatectl show")
    assert unknown is None and "not installed" in said


def _findings(settings: Settings, layout: Layout, devices: set[str]) -> dict[str, Finding]:
    found = run_doctor(settings, DoctorScope(layout, devices, None, datetime.now(UTC)))
    return {f.check: f for f in found}


def test_a_missing_device_and_an_unsynchronised_clock(named_broker: HallBroker, layout: Layout,
                                                      tmp_path: Path) -> None:
    settings = _tls(named_broker, clock_status_command=_command("NTPSynchronized=no"),
                    data_dir=tmp_path, web_users=tmp_path / "users.toml",
                    database_url=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    found = _findings(settings, layout, {"P1"})
    assert found["broker/ok"].level == "ok"
    assert found["device/P1"].level == "fail" and "/dev/hall/printer-k1 does not exist" in \
        found["device/P1"].message
    assert found["clock"].level == "fail" and "timedatectl set-ntp true" in found["clock"].message
    assert "device/P2" not in found  # only this PC's devices
    assert found["cert/ca.crt"].level == "ok"


def test_doctor_command_exit_status_and_lines(named_broker: HallBroker, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"HALL_BROKER_HOST": "localhost", "HALL_BROKER_PORT": str(named_broker.tls_port),
                        "HALL_BROKER_TLS": "true", "HALL_BROKER_USERNAME": "VOICE1",
                        "HALL_BROKER_PASSWORD": named_broker.credentials["VOICE1"],
                        "HALL_BROKER_CA_FILE": str(named_broker.directory / "tls" / "ca.crt"),
                        "HALL_LAYOUT": str(EXAMPLE), "HALL_DATA_DIR": str(tmp_path),
                        "HALL_DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}",
                        "HALL_CLOCK_STATUS_COMMAND": _command("NTPSynchronized=yes")}.items():
        monkeypatch.setenv(name, value)
    code = main(["doctor", "--device", "VOICE1", "--broker-dir", str(named_broker.directory)])
    out = capsys.readouterr().out
    assert "[ OK ] broker/ok" in out and "[ OK ] clock" in out
    assert "[FAIL] demo" in out and "traffic" in out  # the test broker has the demo user
    assert code == 1 and out.rstrip().endswith("warnings")


def test_this_pcs_devices_come_from_its_account_files(layout: Layout, tmp_path: Path) -> None:
    from hall_devices.ops.cli import this_pc

    assert this_pc(layout, Settings(), tmp_path) is None  # nothing known: every device
    (tmp_path / "P1.env").write_text("HALL_BROKER_USERNAME=P1\n")
    (tmp_path / "coordinator.env").write_text("HALL_BROKER_USERNAME=coordinator\n")
    assert this_pc(layout, Settings(broker_username="K1"), tmp_path) == {"P1", "K1"}


def test_no_sign_in_with_the_account_of_a_role_running_here(named_broker: HallBroker) -> None:
    import os
    import subprocess
    import time

    # A process of this PC that runs the role of P1 (its command line is what doctor reads).
    role = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hall-devices", "printer",
                             "--id", "P1"],
                            env={**os.environ, "HALL_BROKER_PORT": str(named_broker.tls_port)})
    try:
        deadline = time.monotonic() + 5
        while check_broker(_tls(named_broker)).step != "in_use" and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec'd
        reach = check_broker(_tls(named_broker))
    finally:
        role.kill()
        role.wait()
    assert reach.ok and reach.step == "in_use" and f"process {role.pid}" in reach.message
    assert check_broker(_tls(named_broker)).step == "ok"  # once it is gone


def test_a_store_open_in_two_processes_is_reported(tmp_path: Path) -> None:
    import sqlite3
    import subprocess

    from hall_devices.ops.doctor import _store

    store = tmp_path / "coordinator.sqlite3"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    db.close()
    settings = Settings(database_url=f"sqlite:///{store}")
    assert _store(settings)[0].level == "ok"
    holder = (f"import sqlite3, time; db = sqlite3.connect({str(store)!r}); "
              "db.execute('SELECT 1 FROM events'); print(1, flush=True); time.sleep(60)")
    holders = [subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for one in holders:
            assert one.stdout is not None and one.stdout.readline() == b"1\n"
        found = _store(settings)[0]
    finally:
        for one in holders:
            one.kill()
            one.wait()
            if one.stdout is not None:
                one.stdout.close()
    assert found.level == "fail" and "only one coordinator" in found.message


def test_no_account_is_never_a_pass(named_broker: HallBroker, tmp_path: Path) -> None:
    from hall_devices.ops.broker import BrokerProcess

    # Debian's own mosquitto: anonymous sign-ins accepted (a real one, on a free port).
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    foreign = BrokerProcess(config, port)
    foreign.start()
    try:
        reach = check_broker(Settings(broker_host="127.0.0.1", broker_port=port))
    finally:
        foreign.stop()
    assert not reach.ok and reach.step == "anonymous"
    assert "this is not the hall's broker" in reach.message and "匿名登录" in reach.message
    # The hall's broker refuses the anonymous sign-in: the account is what is missing.
    hall = check_broker(_tls(named_broker, broker_username=None, broker_password=None))
    assert not hall.ok and hall.step == "no_account" and "no broker account set" in hall.message
    findings = run_doctor(_tls(named_broker, broker_username=None, broker_password=None,
                               clock_status_command=_command("NTPSynchronized=yes"),
                               data_dir=tmp_path, web_users=tmp_path / "users.toml",
                               database_url=f"sqlite:///{tmp_path / 'none.sqlite3'}"),
                          DoctorScope(None, None, None, datetime.now(UTC)))
    assert [f.level for f in findings if f.check.startswith("broker/")] == ["fail"]


def test_a_kiosk_pc_three_seconds_off_the_coordinators_clock(named_broker: HallBroker,
                                                             layout: Layout) -> None:
    import threading
    from datetime import timedelta

    from hall_devices.contract import QueueSummary
    from hall_devices.coordinator import service
    from hall_devices.ops.doctor import _coordinator_clock, _follows_the_queue
    from hall_devices.ops.skew import SUMMARY_AT_LEAST_S, coordinator_offset
    from tests.support import probe

    assert SUMMARY_AT_LEAST_S == service.SUMMARY_AT_LEAST_S
    topic = QUEUE_SUMMARY.topic(hall=named_broker.hall_id)
    coordinator = probe(named_broker.port, "coordinator", named_broker.credentials["coordinator"],
                        client_id="coordinator")

    def summary(ahead_s: float) -> bytes:
        at = datetime.now(UTC) + timedelta(seconds=ahead_s)
        return QueueSummary(updated_at=at, total_waiting=0, services=[]).model_dump_json().encode()

    # A retained copy from ten minutes ago is not the coordinator's clock now.
    coordinator.client.publish(topic, summary(-600), qos=1, retain=True).wait_for_publish(5)
    kiosk = _tls(named_broker, broker_username="K1",
                 broker_password=SecretStr(named_broker.credentials["K1"]))
    try:
        assert coordinator_offset(kiosk, wait_s=0.5).why == "silent"  # the old retained one was ignored
        stop = threading.Event()

        def coordinator_3_s_ahead() -> None:  # this kiosk PC is 3 s behind
            while not stop.wait(0.1):
                coordinator.client.publish(topic, summary(3.0), qos=1)

        publisher = threading.Thread(target=coordinator_3_s_ahead)
        publisher.start()
        try:
            offset = coordinator_offset(kiosk, wait_s=5)
            found = _coordinator_clock(kiosk)
        finally:
            stop.set()
            publisher.join()
    finally:
        coordinator.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        coordinator.stop()
    assert offset.seconds is not None and offset.seconds > 2.0  # CLOCK_SKEW_MAX_S
    assert [f.level for f in found] == ["fail"] and found[0].check == "clock/coordinator"
    assert "behind the coordinator's" in found[0].message and "refuses this PC's ticket requests" in \
        found[0].message and "慢" in found[0].message
    # A printer's account does not read the queue: doctor does not compare (nor wait).
    assert not _follows_the_queue(_tls(named_broker), layout)
    assert _follows_the_queue(kiosk, layout)
    assert _follows_the_queue(_tls(named_broker, broker_username="HS-TV"), layout)
