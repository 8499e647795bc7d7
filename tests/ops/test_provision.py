"""Provisioning tells the truth: a changed TLS host renews the server certificate, one device's
password can be rotated; checked against a real Mosquitto."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from hall_devices.cli import main
from hall_devices.layout import Layout
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.provision import ProvisionError, provision, rotate_password, server_hosts
from hall_devices.ops.reach import check_broker
from tests.conftest import EXAMPLE
from tests.support import HallBroker, probe, wait_until


def _tls_connects(port: int, ca: Path) -> bool:
    """A TLS handshake to ``localhost`` that checks the name against the server certificate."""
    import socket

    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                context.wrap_socket(raw, server_hostname="localhost"):
            return True
    except ssl.SSLCertVerificationError:
        return False


def test_a_changed_tls_host_renews_the_server_certificate(layout: Layout, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert provision(layout, out, tls_hosts=["hall-server.local"]).tls == "made"
    ca = (out / "tls" / "ca.crt").read_bytes()
    port, tls_port = free_port(), free_port()
    config = render_config(out, Listeners(port=port, tls_port=tls_port, tls_bind="127.0.0.1"))
    broker = BrokerProcess(config, port)
    broker.start()
    try:
        assert not _tls_connects(tls_port, out / "tls" / "ca.crt")  # the name does not match
        again = provision(layout, out, tls_hosts=["localhost", "192.168.10.2"])
        assert again.tls == "renewed: hosts hall-server.local -> localhost, 192.168.10.2"
        assert server_hosts(out / "tls" / "server.crt") == ["localhost", "192.168.10.2"]
        assert (out / "tls" / "ca.crt").read_bytes() == ca  # devices keep their ca.crt
        broker.stop()
        broker.start()
        assert _tls_connects(tls_port, out / "tls" / "ca.crt")
    finally:
        broker.stop()
    assert provision(layout, out).tls == "kept"  # no hosts given: nothing to change


def test_renewal_without_the_ca_key_is_refused_with_the_reason(layout: Layout, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "broker"
    provision(layout, out, tls_hosts=["hall-server.local"])
    (out / "tls" / "ca.key").unlink()
    with pytest.raises(ProvisionError, match=r"ca\.key"):
        provision(layout, out, tls_hosts=["other.local"])
    assert server_hosts(out / "tls" / "server.crt") == ["hall-server.local"]
    layout_file = EXAMPLE
    code = main(["broker", "provision", str(layout_file), "--out", str(out), "--tls-host", "x.local"])
    assert code == 1 and "ca.key" in capsys.readouterr().err


def test_rotating_one_password_keeps_the_others(own_broker: HallBroker) -> None:
    old = dict(own_broker.credentials)
    new = rotate_password(own_broker.directory, "P1")
    assert new != old["P1"]
    own_broker.process.reload()
    old_settings = own_broker.settings("P1").model_copy(update={"broker_password": SecretStr(old["P1"])})
    # The reload is asynchronous: the old password stops working soon after SIGHUP.
    wait_until(lambda: check_broker(old_settings).step == "auth", timeout_s=15, what="old password refused")
    probe(own_broker.port, "P1", new).stop()
    probe(own_broker.port, "P2", old["P2"]).stop()
    with pytest.raises(ProvisionError, match="no user 'NOPE'"):
        rotate_password(own_broker.directory, "NOPE")
