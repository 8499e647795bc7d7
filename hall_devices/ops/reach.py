"""Can this PC reach the broker the settings name? Each step on its own, so each failure gets its own
message: the host name, the port, TLS (the CA, the server name), then the MQTT sign-in.

Used by ``hall-devices doctor``; every message is in Chinese and English and says what to do.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hall_devices.mqtt.bus import BusOptions
from hall_devices.registry import ROLES
from hall_devices.settings import Settings

# OpenSSL's verify codes (x509_vfy.h) that tell a wrong CA from a wrong name.
HOSTNAME_MISMATCH = 62
IP_MISMATCH = 64


@dataclass(frozen=True)
class Reach:
    ok: bool
    step: str  # host, port, tls_ca, tls_name, tls, auth, no_account, anonymous, mqtt, in_use, ok
    message: str


def _where(settings: Settings) -> str:
    return f"{settings.broker_host}:{settings.broker_port}"


def check_broker(settings: Settings, timeout_s: float = 3.0) -> Reach:
    """Walk the connection the roles make, step by step; the first step that fails is reported."""
    host, port = settings.broker_host, settings.broker_port
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Reach(False, "host", f"代理服务器主机名 {host!r} 无法解析，请检查 HALL_BROKER_HOST "
                                    "和 DNS/hosts / "
                                    f"broker host {host!r} cannot be resolved ({exc}): check "
                                    "HALL_BROKER_HOST and DNS or /etc/hosts")
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        return Reach(False, "port", f"连不上 {_where(settings)}：代理未运行、端口写错或防火墙阻挡 / "
                                    f"cannot connect to {_where(settings)} ({exc}): the broker is not "
                                    "running, HALL_BROKER_PORT is wrong, or a firewall blocks it "
                                    "(TLS listener 8883, password listener 1883)")
    with raw:
        if settings.broker_tls:
            found = _tls(settings, raw)
            if found is not None:
                return found
    pid = running_role(settings.broker_username, settings.broker_port)
    if pid is not None:  # one account, one session: signing in would take over the role's
        return Reach(True, "in_use", f"本机进程 {pid} 正以 {settings.broker_username!r} 运行，"
                                     f"未再登录检查密码；请看其日志 / not signed in: process {pid} of this "
                                     f"PC runs the role of {settings.broker_username!r} (signing in would "
                                     "take over its session); its log says whether it is connected: "
                                     "journalctl -u 'hall-*'")
    return _sign_in(settings, timeout_s)


def running_role(username: str | None, port: int | None) -> int | None:
    """The id of a process of this PC (from /proc) running the role of ``username`` against the
    broker port ``port`` (its HALL_BROKER_PORT; a process whose environment is not ours to read
    counts; None: any port), if any."""
    if not username:
        return None
    flags = {r.target.flag for r in ROLES if r.target is not None}
    hall_roles = {r.name for r in ROLES if r.target is None and r.in_hall}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(a.endswith(("hall-devices", "hall_devices.cli")) for a in argv) or "doctor" in argv:
            continue
        pairs = set(itertools.pairwise(argv))
        # The registry's words: a device role names its device after --id/--bus; a hall's own
        # role (coordinator, web) runs as the user of its name.
        role = (username in hall_roles and username in argv) \
            or any((flag, username) in pairs for flag in flags)
        if role and (port is None or _broker_port(cmdline.parent) in (None, str(port))):
            return int(cmdline.parent.name)
    return None


def _broker_port(process: Path) -> str | None:
    try:
        environ = (process / "environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    found = [v.removeprefix("HALL_BROKER_PORT=") for v in environ if v.startswith("HALL_BROKER_PORT=")]
    return found[-1] if found else "1883"


def _tls(settings: Settings, raw: socket.socket) -> Reach | None:
    ca = settings.broker_ca_file
    if ca is None or not ca.is_file():
        return Reach(False, "tls_ca", f"找不到 CA 证书 {ca}，请从服务器复制 ca.crt 并设置 "
                                      "HALL_BROKER_CA_FILE / "
                                      f"CA file {ca} not found: copy ca.crt from the server "
                                      "(/etc/hall/broker/tls/ca.crt) and set HALL_BROKER_CA_FILE")
    try:
        context = ssl.create_default_context(cafile=str(ca))
    except ssl.SSLError as exc:
        return Reach(False, "tls_ca", f"{ca} 不是有效的 CA 证书 / {ca} is not a CA certificate: {exc}")
    try:
        with context.wrap_socket(raw, server_hostname=settings.broker_host):
            return None
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in (HOSTNAME_MISMATCH, IP_MISMATCH):
            return Reach(False, "tls_name",
                         f"服务器证书不含名称 {settings.broker_host!r}：请用证书上的名称连接，或在服务器上用 "
                         f"--tls-host {settings.broker_host} 重新执行 broker provision / the server "
                         f"certificate is not valid for {settings.broker_host!r} ({exc.verify_message}): "
                         "connect by a name on the certificate, or provision the broker again with "
                         f"--tls-host {settings.broker_host} and restart it")
        return Reach(False, "tls_ca",
                     f"服务器证书不是由 {ca} 签发的：请从服务器复制当前的 ca.crt / the server certificate "
                     f"is not signed by {ca} ({exc.verify_message}): copy the server's current ca.crt")
    except (ssl.SSLError, OSError) as exc:
        return Reach(False, "tls", f"{_where(settings)} 不是 TLS 端口（或 TLS 握手失败）："
                                   "检查 HALL_BROKER_PORT "
                                   f"与 HALL_BROKER_TLS / TLS handshake with {_where(settings)} failed "
                                   f"({exc}): is this the TLS listener? check HALL_BROKER_PORT and "
                                   "HALL_BROKER_TLS")


def doctor_client(settings: Settings) -> mqtt.Client:
    """A paho client with the role's credentials and TLS, under the client id ``<username>-doctor``
    (not the role's own: a running role is not kicked); not connected."""
    name = settings.broker_username or "anonymous"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-doctor",
                         protocol=mqtt.MQTTv5, manual_ack=True)
    if settings.broker_username:
        password = settings.broker_password.get_secret_value() if settings.broker_password else None
        client.username_pw_set(settings.broker_username, password)
    if settings.broker_tls and settings.broker_ca_file:
        client.tls_set(ca_certs=str(settings.broker_ca_file))
    return client


def _sign_in(settings: Settings, timeout_s: float) -> Reach:
    """An MQTT v5 CONNECT with the role's credentials; a clean-start, no-will session that leaves
    no trace (its client id is the username plus ``-doctor``, so a running role is not kicked)."""
    user = settings.broker_username or "(anonymous)"
    # Not a clean start, nothing acknowledged, the role's own session expiry: should the broker bind
    # this connection to the account's session, that session (queued jobs) is left as it was.
    client = doctor_client(settings)
    answered = threading.Event()
    result: list[Any] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.append(reason)
        answered.set()

    client.on_connect = on_connect
    try:
        keep = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho is untyped here
        keep.SessionExpiryInterval = BusOptions.session_expiry_s
        client.connect(settings.broker_host, settings.broker_port, keepalive=10, clean_start=False,
                       properties=keep)
    except (OSError, ValueError) as exc:
        return Reach(False, "mqtt", f"MQTT 连接失败 / MQTT connection failed: {exc}")
    client.loop_start()
    try:
        if not answered.wait(timeout_s) or not result:
            return Reach(False, "mqtt", f"{_where(settings)} 没有按 MQTT 应答：端口是否为 TLS 端口？检查 "
                                        f"HALL_BROKER_TLS / {_where(settings)} gave no MQTT answer: is it "
                                        "the TLS listener while HALL_BROKER_TLS is false, or not a broker?")
        reason = result[0]
        if not settings.broker_username:
            return _anonymous(settings, accepted=not reason.is_failure)
        if reason.is_failure:
            return Reach(False, "auth", f"代理拒绝登录 {user!r}（{reason}）：用户名或密码错误，请核对 "
                                        f"credentials.toml / the broker refused {user!r} ({reason}): wrong "
                                        "username or password: compare HALL_BROKER_PASSWORD with this "
                                        "device's line in the server's credentials.toml")
        return Reach(True, "ok", f"代理可达，已以 {user!r} 登录 / broker reachable at {_where(settings)}, "
                                 f"signed in as {user!r}")
    finally:
        client.disconnect()
        client.loop_stop()


def _anonymous(settings: Settings, accepted: bool) -> Reach:
    """No HALL_BROKER_USERNAME: never a pass. The hall's broker refuses anonymous sign-ins (only
    ``--dev-port`` listens anonymously, on 127.0.0.1), so a broker that lets one in is another
    program's (Debian's own mosquitto on 1883, say)."""
    if accepted:
        return Reach(False, "anonymous",
                     f"{_where(settings)} 接受了匿名登录：这不是大厅的代理服务器（大厅代理只接受账号登录）。"
                     "请设置 HALL_BROKER_USERNAME/HALL_BROKER_PASSWORD 并核对 HALL_BROKER_HOST/PORT / "
                     f"anonymous sign-in accepted at {_where(settings)}: this is not the hall's broker "
                     "(it signs in accounts only). Set HALL_BROKER_USERNAME and HALL_BROKER_PASSWORD "
                     "(this device's .env file) and check HALL_BROKER_HOST and HALL_BROKER_PORT")
    return Reach(False, "no_account",
                 "未设置代理账号：请在本设备的 .env 文件中设置 HALL_BROKER_USERNAME 和 "
                 "HALL_BROKER_PASSWORD / "
                 f"no broker account set: the broker at {_where(settings)} refused an anonymous sign-in; "
                 "set HALL_BROKER_USERNAME and HALL_BROKER_PASSWORD (this device's .env file)")
