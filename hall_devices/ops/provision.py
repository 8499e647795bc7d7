"""Broker provisioning from the layout: one MQTT user per agent, an ACL, a CA and server certificate.

Each agent's username is its device id. The ACL lets an agent write only its own topics (its
status, its error reports, its requests; a pad bus only the commands and ratings of the windows
of its pads), the coordinator everything of the hall, the web server what a console sends, and the
``monitor`` user read everything. All topics come from :mod:`hall_devices.contract`.

One account is one identity: Mosquitto binds each client's id to its username
(``use_username_as_clientid`` in broker_config/mosquitto.conf), so every process has an account of
its own (a second process on one account would throw the first off). ``watchers`` are further
read-only accounts, one per person or tool that watches the bus beside ``monitor``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hall_devices.contract import (
    CALL,
    CARD_READ,
    DEVICE_STATUS,
    ERROR,
    HALL_LAYOUT,
    HELP_REQUEST,
    PRINT_EXPECTED,
    PRINT_JOB,
    PRINT_RESULT,
    QUERY,
    QUEUE_SUMMARY,
    RATING,
    RATING_ACK,
    RATING_PROMPT,
    STAFF_COMMAND,
    TICKET_REPLY,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_RESULT,
    WINDOW_STATE,
    hall_subtree,
)
from hall_devices.layout import (
    RESERVED_IDS,
    AnnouncerDevice,
    HallScreenDevice,
    IdCardReaderDevice,
    KioskDevice,
    Layout,
    LedBusDevice,
    PadBusDevice,
    PadDevice,
    PrinterDevice,
)

COORDINATOR = "coordinator"
WEB = "web"
MONITOR = "monitor"
TRAFFIC = "traffic"  # the demo's traffic generator, which acts as kiosks and pads
UP = "up"  # the live summary line of `hall-devices up` (demo)


class ProvisionError(Exception):
    """Provisioning cannot go on (the layout, the accounts asked for, the TLS files); the message
    says why and what to do."""


@dataclass
class User:
    name: str
    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)
    readwrite: list[str] = field(default_factory=list)


def _own(user: User, hall: str) -> User:
    """Every agent writes its own status and error reports, and reads the layout the hall runs."""
    user.write += [DEVICE_STATUS.topic(hall=hall, device=user.name),
                   ERROR.topic(hall=hall, reporter=user.name)]
    user.read.append(HALL_LAYOUT.topic(hall=hall))
    return user


def users_for(layout: Layout, demo: bool = False, watchers: Sequence[str] = ()) -> list[User]:
    """The broker users of a hall; ``demo`` adds the traffic generator and ``up``'s summary, never
    for a real hall; ``watchers`` are extra read-only accounts.

    Raises :class:`ProvisionError` when a device id or watcher is the name of another account.
    """
    hall = layout.hall.id
    everything = hall_subtree(hall)
    taken = {d.id.lower() for d in layout.devices}
    for device in layout.devices:  # layout check refuses these too; a Layout built in code may not
        if device.id.lower() in RESERVED_IDS:
            raise ProvisionError(f"device id {device.id!r} is reserved for {RESERVED_IDS[device.id.lower()]}")
    for watcher in watchers:
        plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", watcher)
        if not plain or watcher.lower() in taken | RESERVED_IDS.keys():
            raise ProvisionError(f"watcher account {watcher!r} is taken or not a plain name "
                                 "(letters, digits, _ . -)")
        taken.add(watcher.lower())
    users = [User(COORDINATOR, readwrite=[everything]),
             User(MONITOR, read=[everything]),
             *(User(w, read=[everything]) for w in watchers),
             _own(User(WEB, read=[everything], write=[WINDOW_COMMAND.filter(hall=hall),
                                                      STAFF_COMMAND.topic(hall=hall, staff=WEB),
                                                      QUERY.topic(hall=hall, client=WEB),
                                                      HELP_REQUEST.filter(hall=hall)]),
                  hall)]
    if demo:
        users.append(User(TRAFFIC, read=[everything], write=[
            TICKET_REQUEST.filter(hall=hall), WINDOW_COMMAND.filter(hall=hall),
            RATING.filter(hall=hall),
            STAFF_COMMAND.topic(hall=hall, staff=TRAFFIC)]))  # demo bookings for ID cards
        users.append(User(UP, read=[everything]))
    shared_reads = [CALL.filter(hall=hall), WINDOW_STATE.filter(hall=hall),
                    QUEUE_SUMMARY.filter(hall=hall)]
    for device in layout.devices:
        if isinstance(device, KioskDevice):
            user = User(device.id, read=[TICKET_REPLY.topic(hall=hall, kiosk=device.id),
                                         QUEUE_SUMMARY.filter(hall=hall),
                                         DEVICE_STATUS.filter(hall=hall)],
                        write=[TICKET_REQUEST.topic(hall=hall, kiosk=device.id)],
                        readwrite=[HELP_REQUEST.topic(hall=hall, kiosk=device.id)])
            user.read.append(CARD_READ.topic(hall=hall, kiosk=device.id))
            if device.printer:  # to tell the applicant when the ticket did not print
                user.read.append(PRINT_RESULT.topic(hall=hall, printer=device.printer))
        elif isinstance(device, PrinterDevice):
            user = User(device.id, read=[PRINT_JOB.topic(hall=hall, printer=device.id),
                                         PRINT_EXPECTED.topic(hall=hall, printer=device.id)],
                        write=[PRINT_RESULT.topic(hall=hall, printer=device.id)])
        elif isinstance(device, IdCardReaderDevice):
            user = User(device.id, write=[CARD_READ.topic(hall=hall, kiosk=device.kiosk)])
        elif isinstance(device, LedBusDevice | AnnouncerDevice) or (
                isinstance(device, HallScreenDevice) and device.bus is None):
            user = User(device.id, read=list(shared_reads))
        elif isinstance(device, PadBusDevice):
            user = User(device.id)
            for pad in layout.members(device.id):
                if isinstance(pad, PadDevice):
                    w = pad.window
                    user.write += [WINDOW_COMMAND.topic(hall=hall, window=w),
                                   RATING.topic(hall=hall, window=w)]
                    user.read += [r.topic(hall=hall, window=w) for r in
                                  (WINDOW_RESULT, WINDOW_STATE, RATING_PROMPT, RATING_ACK)]
        else:
            continue  # bus members (screens, pads) speak through their bus agent
        users.append(_own(user, hall))
    return users


def acl_text(users: list[User]) -> str:
    lines = ["# Generated by `hall-devices broker provision`; do not edit, provision again.", ""]
    for user in users:
        lines.append(f"user {user.name}")
        lines += [f"topic read {t}" for t in user.read]
        lines += [f"topic write {t}" for t in user.write]
        lines += [f"topic readwrite {t}" for t in user.readwrite]
        lines.append("")
    return "\n".join(lines)


def password_hash(password: str, salt: bytes | None = None, iterations: int = 101) -> str:
    """A Mosquitto 2 password-file hash: ``$7$iterations$salt$pbkdf2-sha512`` in base64."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    """A certificate's subject alternative names: an IP address entry or a DNS name per host."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_tls(out: Path, hosts: list[str], days: int = 3650) -> None:
    """A self-signed CA and a server certificate for ``hosts`` (names or IP addresses)."""
    out.mkdir(parents=True, exist_ok=True)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hall_devices hall CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write(out / "ca.crt", ca.public_bytes(pem))
    _write(out / "ca.key", ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), secret=True)
    make_server_cert(out, hosts, days)


def make_server_cert(out: Path, hosts: list[str], days: int = 3650) -> None:
    """A new server key and certificate for ``hosts``, signed by the CA in ``out`` (kept as is, so
    every device's copy of ``ca.crt`` stays valid)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((out / "ca.key").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ProvisionError(f"{out / 'ca.key'} is not the EC key this command made")
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = alt_names(hosts)
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
              .issuer_name(ca.subject).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(start)
              .not_valid_after(min(start + dt.timedelta(days=days), ca.not_valid_after_utc))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write(out / "server.crt", server.public_bytes(pem))
    _write(out / "server.key", server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()), secret=True)


def server_hosts(cert_file: Path) -> list[str]:
    """The names and addresses a server certificate is valid for."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in alt]


def cert_expiry(cert_file: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc


def _write(path: Path, data: bytes | str, secret: bool = False) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)


RENEW_BEFORE = dt.timedelta(days=30)  # a server certificate this close to its end is renewed


@dataclass(frozen=True)
class Provisioned:
    directory: Path
    credentials: dict[str, str]
    tls: str = "kept"  # "made", "kept" or "renewed: <why>"


def provision(layout: Layout, out: Path, tls_hosts: list[str] | None = None,
              demo: bool = False, watchers: Sequence[str] = ()) -> Provisioned:
    """Write ``passwd``, ``acl``, ``credentials.toml`` and ``tls/`` for a hall into ``out``.

    Existing credentials in ``out`` are kept, so provisioning again after a layout change does not
    lock out devices that are already configured.
    """
    out.mkdir(parents=True, exist_ok=True)
    users = users_for(layout, demo, watchers)
    credentials = _read_credentials(out / "credentials.toml")
    for user in users:
        credentials.setdefault(user.name, secrets.token_urlsafe(18))
    credentials = {u.name: credentials[u.name] for u in users}
    _write(out / "passwd", "".join(f"{n}:{password_hash(p)}\n" for n, p in credentials.items()),
           secret=True)
    _write(out / "acl", acl_text(users))
    _write(out / "credentials.toml",
           "# username = password, one per agent; give each device only its own.\n"
           + "".join(f'{n} = "{p}"\n' for n, p in credentials.items()), secret=True)
    tls = _tls(out / "tls", tls_hosts)
    if tls != "kept" or not (out / "tls" / "web.crt").exists():
        # The web's HTTPS certificate, from the same hall CA, for the same hosts as the broker's.
        from hall_devices.web.tls import issue_web_certificate

        issue_web_certificate(out / "tls", server_hosts(out / "tls" / "server.crt"))
    return Provisioned(out, credentials, tls)


def _tls(tls: Path, hosts: list[str] | None) -> str:
    """Make the TLS files, or renew the server certificate when its hosts changed or it ends soon."""
    if not (tls / "server.crt").exists():
        make_tls(tls, hosts or ["localhost", "127.0.0.1"])
        return "made"
    had = server_hosts(tls / "server.crt")
    why = None
    if hosts and sorted(hosts) != sorted(had):
        why = f"hosts {', '.join(had)} -> {', '.join(hosts)}"
    elif cert_expiry(tls / "server.crt") - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        why = f"it ends on {cert_expiry(tls / 'server.crt'):%Y-%m-%d}"
    if why is None:
        return "kept"
    if not (tls / "ca.key").exists():
        raise ProvisionError(f"the server certificate must be renewed ({why}) but {tls / 'ca.key'} is "
                             "missing: restore it, or move tls/ away to make a new CA (then give every "
                             "device the new ca.crt)")
    if cert_expiry(tls / "ca.crt") - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        raise ProvisionError(f"the hall CA {tls / 'ca.crt'} ends on {cert_expiry(tls / 'ca.crt'):%Y-%m-%d}: "
                             "move tls/ away to make a new CA, then give every device the new ca.crt")
    make_server_cert(tls, hosts or had)
    return f"renewed: {why}"


def rotate_password(out: Path, username: str) -> str:
    """A new password for one user of a provisioned broker folder; the others are kept.

    Rewrites ``passwd`` and ``credentials.toml``; the broker loads it on SIGHUP. Raises
    ProvisionError for a user that is not provisioned.
    """
    credentials = _read_credentials(out / "credentials.toml")
    if username not in credentials:
        raise ProvisionError(f"no user {username!r} in {out / 'credentials.toml'} "
                             f"(known: {', '.join(sorted(credentials))})")
    credentials[username] = secrets.token_urlsafe(18)
    _write(out / "passwd", "".join(f"{n}:{password_hash(p)}\n" for n, p in credentials.items()),
           secret=True)
    _write(out / "credentials.toml",
           "# username = password, one per agent; give each device only its own.\n"
           + "".join(f'{n} = "{p}"\n' for n, p in credentials.items()), secret=True)
    return credentials[username]


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}
