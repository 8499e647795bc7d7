"""The web server's TLS certificate, issued by the hall's own CA (the one `broker provision` makes).

``<broker dir>/tls/web.crt`` and ``web.key`` (0600) sit next to the broker's ``server.crt``; browsers
trust them once the hall's ``ca.crt`` is installed on the PC (see docs/web.md).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hall_devices.ops.provision import alt_names

# Browsers refuse server certificates valid for more than 825 days (CA/Browser Forum rules).
DAYS = 825


class CertificateError(Exception):
    """The hall CA is missing or unreadable; the message names the file."""


def issue_web_certificate(tls_dir: Path, hosts: list[str], days: int = DAYS) -> tuple[Path, Path]:
    """Write ``web.crt`` and ``web.key`` for ``hosts`` (names or IP addresses) signed by
    ``tls_dir/ca.key``; returns their paths. Raises :class:`CertificateError` without a CA."""
    try:
        ca_key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), password=None)
        ca = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"no usable hall CA in {tls_dir}: {exc}; run "
                               "`hall-devices broker provision` first") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{tls_dir / 'ca.key'} is not the EC key provisioning makes")
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(alt_names(hosts)), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    cert_path, key_path = tls_dir / "web.crt", tls_dir / "web.key"
    for path, data, mode in ((cert_path, certificate.public_bytes(pem), 0o644),
                             (key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()), 0o600)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    return cert_path, key_path
