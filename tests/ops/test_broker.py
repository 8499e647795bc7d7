"""Provisioned credentials, ACL and TLS against a real Mosquitto."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall_devices.contract import (
    DEVICE_STATUS,
    PRINT_EXPECTED,
    RATING,
    DeviceState,
    DeviceStatus,
    PrintExpected,
    Rating,
    RatingLevel,
)
from hall_devices.mqtt.bus import encode
from hall_devices.ops.provision import password_hash, users_for
from tests.support import HallBroker, probe

HALL = "demo"


def status(device: str) -> bytes:
    return encode(DeviceStatus(device_id=device, kind="printer", state=DeviceState.OK,
                               updated_at=datetime.now(UTC)))


def test_password_hash_is_mosquitto_format() -> None:
    hashed = password_hash("secret", salt=b"\x00" * 12)
    assert hashed.startswith("$7$101$AAAAAAAAAAAAAAAA$")


def test_traffic_user_only_in_demo(hall_broker: HallBroker) -> None:
    from hall_devices.layout import load_layout
    from tests.conftest import EXAMPLE

    layout = load_layout(EXAMPLE)
    assert "traffic" not in {u.name for u in users_for(layout)}
    assert "traffic" in {u.name for u in users_for(layout, demo=True)}


def test_anonymous_is_refused_on_tls_and_password_listeners(hall_broker: HallBroker) -> None:
    ca = hall_broker.directory / "tls" / "ca.crt"
    for port, tls in ((hall_broker.tls_port, ca), (hall_broker.port, None)):
        anonymous = probe(port, None, None, tls_ca=tls, wait=False)
        reason = anonymous.connect_result.get(timeout=5)
        anonymous.stop()
        assert reason.is_failure, f"anonymous accepted on port {port}"
        assert "authori" in str(reason).lower() or "bad user" in str(reason).lower()


def test_wrong_password_is_refused(hall_broker: HallBroker) -> None:
    client = probe(hall_broker.port, "P1", "not-the-password", wait=False)
    reason = client.connect_result.get(timeout=5)
    client.stop()
    assert reason.is_failure


def test_tls_with_credentials_works(hall_broker: HallBroker) -> None:
    ca = hall_broker.directory / "tls" / "ca.crt"
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/+/status"])
    printer = probe(hall_broker.tls_port, "P2", hall_broker.credentials["P2"], tls_ca=ca)
    printer.client.publish(DEVICE_STATUS.topic(hall=HALL, device="P2"), status("P2"), qos=1)
    got = monitor.expect(lambda m: m.topic.endswith("/P2/status"))
    assert b'"device_id":"P2"' in got.payload
    printer.stop()
    monitor.stop()


def test_a_device_writes_only_its_own_topics(hall_broker: HallBroker) -> None:
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/#"])
    printer = probe(hall_broker.port, "P1", hall_broker.credentials["P1"])
    pads = probe(hall_broker.port, "KB1", hall_broker.credentials["KB1"])
    # Its own status reaches subscribers.
    printer.client.publish(DEVICE_STATUS.topic(hall=HALL, device="P1"), status("P1"), qos=1)
    monitor.expect(lambda m: m.topic == f"hall/{HALL}/device/P1/status" and b"P1" in m.payload)
    # Another device's status does not.
    printer.client.publish(DEVICE_STATUS.topic(hall=HALL, device="P2"), status("P2"), qos=1)
    # A rating for window 3 is the pad bus's (PAD3 is on KB1); a printer may not send one.
    def rating(rating_id: str, window: int) -> bytes:
        return encode(Rating(rating_id=rating_id, prompt_id="p", window=window,
                             level=RatingLevel.SATISFIED, rated_at=datetime.now(UTC)))

    printer.client.publish(RATING.topic(hall=HALL, window=3), rating("from-printer", 3), qos=1)
    # Window 99 has no pad on KB1: the bus may not rate it either.
    pads.client.publish(RATING.topic(hall=HALL, window=99), rating("kb-99", 99), qos=1)
    # A rating for a window of its own pads does arrive (and proves the monitor was listening).
    pads.client.publish(RATING.topic(hall=HALL, window=3), rating("kb-3", 3), qos=1)
    got = monitor.expect(lambda m: "/rating" in m.topic or m.topic.endswith("P2/status"))
    assert got.topic == f"hall/{HALL}/window/3/rating", f"forbidden message delivered: {got.topic}"
    assert b"kb-3" in got.payload, f"forbidden rating delivered: {got.payload!r}"
    monitor.nothing(lambda m: m.topic.endswith("P2/status") or b"kb-99" in m.payload
                    or b"from-printer" in m.payload, 0.5)
    for client in (monitor, printer, pads):
        client.stop()


def test_only_the_coordinator_sends_a_printer_its_heads_up_and_only_that_printer_reads_it(
        hall_broker: HallBroker) -> None:
    topic = PRINT_EXPECTED.topic(hall=HALL, printer="P1")
    p1 = probe(hall_broker.port, "P1", hall_broker.credentials["P1"], subscribe=[topic])
    p2 = probe(hall_broker.port, "P2", hall_broker.credentials["P2"], subscribe=[topic])
    kiosk = probe(hall_broker.port, "K1", hall_broker.credentials["K1"])  # P1's own kiosk
    coordinator = probe(hall_broker.port, "coordinator", hall_broker.credentials["coordinator"])

    def heads_up(request_id: str) -> bytes:
        return encode(PrintExpected(printer_id="P1", request_id=request_id))

    kiosk.client.publish(topic, heads_up("from-kiosk"), qos=1)
    p2.client.publish(topic, heads_up("from-p2"), qos=1)
    coordinator.client.publish(topic, heads_up("from-coordinator"), qos=1)
    got = p1.expect(lambda m: True)
    assert b"from-coordinator" in got.payload, f"forbidden heads-up delivered: {got.payload!r}"
    p1.nothing(lambda m: True, 0.5)
    p2.nothing(lambda m: True, 0.5)  # its subscription to another printer's heads-up is denied
    for client in (p1, p2, kiosk, coordinator):
        client.stop()


def test_dev_port_starts_mosquitto_with_an_anonymous_localhost_listener(tmp_path: Path) -> None:
    from hall_devices.layout import load_layout
    from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
    from hall_devices.ops.provision import provision
    from tests.conftest import EXAMPLE

    provision(load_layout(EXAMPLE), tmp_path)
    port, dev_port = free_port(), free_port()
    config = render_config(tmp_path, Listeners(port=port, tls_port=free_port(), tls_bind="127.0.0.1",
                                               dev_port=dev_port))
    live = [line for line in config.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    assert f"listener {dev_port} 127.0.0.1" in live and "allow_anonymous true" in live
    assert all("@" not in line for line in live), live
    broker = BrokerProcess(config, port)
    broker.start()  # raises with Mosquitto's log if it refuses the file
    try:
        anonymous = probe(dev_port, None, None, subscribe=[f"hall/{HALL}/#"])
        anonymous.client.publish(DEVICE_STATUS.topic(hall=HALL, device="P1"), status("P1"), qos=1)
        assert anonymous.expect(lambda m: True).topic == f"hall/{HALL}/device/P1/status"
        anonymous.stop()
        refused = probe(port, None, None, wait=False)  # the password listener still is not anonymous
        assert refused.connect_result.get(timeout=5).is_failure
        refused.stop()
    finally:
        broker.stop()


def test_free_port_never_gives_a_process_the_same_port_twice() -> None:
    # Its callers bind later (a broker's two listeners, a relay, the web), and the kernel's random
    # pick repeats a port about once in 14,000 calls: 1,000 calls would repeat some ~35 times.
    from hall_devices.ops.broker import free_port

    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)


def test_without_dev_port_no_dev_line_is_rendered(tmp_path: Path) -> None:
    from hall_devices.ops.broker import Listeners, render_config

    text = render_config(tmp_path, Listeners()).read_text(encoding="utf-8")
    assert "allow_anonymous true" not in text and "Development only" not in text


def test_every_authenticated_listener_binds_the_client_id_to_the_username(tmp_path: Path) -> None:
    from hall_devices.ops.broker import Listeners, render_config

    text = render_config(tmp_path, Listeners(dev_port=1999)).read_text(encoding="utf-8")
    listeners = text.split("\nlistener ")[1:]
    assert len(listeners) == 3
    for block in listeners:
        if "password_file" in block:
            assert "\nuse_username_as_clientid true\n" in block, block
    assert sum("password_file" in block for block in listeners) == 2


def test_a_placeholder_without_a_value_is_a_clear_error(tmp_path: Path) -> None:
    from hall_devices.ops.broker import BrokerError, Listeners, render_config

    template = tmp_path / "template.conf"
    template.write_text("# @NAMES@ in comments are fine\nlistener @PORT@\nmax_connections @MAX@\n",
                        encoding="utf-8")
    with pytest.raises(BrokerError, match="placeholders without a value: @MAX@"):
        render_config(tmp_path, Listeners(), template)


def test_provision_refuses_reserved_and_taken_account_names(tmp_path: Path) -> None:
    from hall_devices.layout import load_layout
    from hall_devices.ops.provision import ProvisionError, provision, users_for
    from tests.conftest import EXAMPLE

    layout = load_layout(EXAMPLE)
    # A layout built in code skips `layout check`; provisioning still refuses to hand it an account.
    renamed = layout.model_copy(update={"devices": [
        d.model_copy(update={"id": "web"}) if d.id == "VOICE1" else d for d in layout.devices]})
    with pytest.raises(ProvisionError, match="device id 'web' is reserved"):
        users_for(renamed)
    for taken in ("K1", "coordinator", "bad name"):
        with pytest.raises(ProvisionError, match="watcher account"):
            provision(layout, tmp_path, watchers=[taken])
    watcher = next(u for u in users_for(layout, watchers=["ops1"]) if u.name == "ops1")
    assert watcher.write == [] and watcher.readwrite == [] and watcher.read == [f"hall/{HALL}/#"]


def test_cli_provision_adds_watchers_and_names_a_taken_one(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.cli import main
    from tests.conftest import EXAMPLE

    out = tmp_path / "broker"
    assert main(["broker", "provision", str(EXAMPLE), "--out", str(out), "--watcher", "ops1"]) == 0
    assert any(line.startswith("ops1:$7$") for line in (out / "passwd").read_text().splitlines())
    assert f"user ops1\ntopic read hall/{HALL}/#\n" in (out / "acl").read_text()
    assert main(["broker", "provision", str(EXAMPLE), "--out", str(out), "--watcher", "P1"]) == 1
    assert "watcher account 'P1' is taken" in capsys.readouterr().err
