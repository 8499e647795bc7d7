"""The region's ``hall-devices`` tools (issue 20): region-export, region-push, region-web,
region-provision, region-bridge. Added to the parser by :func:`hall_devices.cli.build_parser`; the
regional service itself, ``hall-devices region``, is a role of :mod:`hall_devices.registry`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hall_devices.layout import LayoutError, load_layout
from hall_devices.settings import Settings


def _db_url(args: argparse.Namespace, settings: Settings) -> str | None:
    url: str | None = args.db or settings.region_database_url
    if not url:
        print("给出区域数据库 / give the region's database: --db postgresql://... "
              "(or HALL_REGION_DATABASE_URL)", file=sys.stderr)
    return url


def _region_export(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from hall_devices.region.outbox import export_file
    from hall_devices.region.profiles import ProfileError, load_profile

    url = _db_url(args, settings)
    if not url:
        return 2
    try:
        profile = load_profile(args.profile or settings.region_profile)
    except ProfileError as exc:
        print(f"省级接口配置有误 / {exc}", file=sys.stderr)
        return 1
    text = export_file(url, profile, datetime.now(UTC), args.first, args.last or args.first, fmt=args.format)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _region_push(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.region.db import RegionDb, RegionDbError

    url = _db_url(args, settings)
    if not url:
        return 2
    try:
        load_layout(args.layout)  # refused here already when it is not valid
    except LayoutError as exc:
        print(f"布局文件有误 / layout has problems: {exc}", file=sys.stderr)
        return 1
    try:
        db = RegionDb(url)
        try:
            version = db.add_push(args.hall, args.layout.read_text(encoding="utf-8"), args.version)
        finally:
            db.close()
    except RegionDbError as exc:
        print(f"无法下发 / cannot push: {exc}", file=sys.stderr)
        return 1
    print(f"queued: layout version {version} for hall {args.hall}; the region service sends it and "
          "the regional dashboard shows the hall's answer")
    return 0


def _region_web(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from hall_devices.region.users import RegionWebError
    from hall_devices.region.web import create_region_app, region_web_config
    from hall_devices.web.access import AccessOptions
    from hall_devices.web.audit import AuditError, AuditLog
    from hall_devices.web.security import proxy_list

    url = _db_url(args, settings)
    if not url:
        return 2
    try:
        proxies = proxy_list(args.trusted_proxies, "--trusted-proxies")
    except ValueError as exc:
        print(f"参数有误 / {exc}", file=sys.stderr)
        return 2
    tls = args.tls_cert is not None
    try:
        audit = AuditLog(args.audit or args.users.parent / "region-audit.sqlite3")
        app = create_region_app(url, args.users, audit, AccessOptions(secure=tls, demo=False))
    except RegionWebError as exc:
        print(f"用户文件有误 / {exc}", file=sys.stderr)
        return 1
    except AuditError as exc:
        print(f"无法打开审计记录 / {exc}", file=sys.stderr)
        return 1
    print(f"regional dashboard: {'https' if tls else 'http'}://{args.host}:{args.port}/", flush=True)
    uvicorn.Server(region_web_config(app, args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                                     proxies=proxies)).run()
    return 0



def _region_provision(args: argparse.Namespace, settings: Settings) -> int:
    import tomllib

    from hall_devices.ops.broker import Listeners, render_config
    from hall_devices.region.bridge import BridgeError, HallEntry, provision_region

    try:
        data = tomllib.loads(args.halls.read_text(encoding="utf-8"))
        halls = [HallEntry(str(h["id"]), str(h["district"])) for h in data.get("halls", [])]
        credentials = provision_region(args.out, halls, tls_hosts=args.tls_host or None)
    except (OSError, tomllib.TOMLDecodeError, KeyError, BridgeError) as exc:
        print(f"无法生成区域账号 / cannot provision the region: {exc!r}", file=sys.stderr)
        return 1
    config = render_config(args.out, Listeners(port=args.port, bind=args.bind, tls_port=args.tls_port,
                                               tls_bind=args.tls_bind, run_as=args.broker_user))
    print(f"wrote {len(credentials)} accounts (region, one per hall) to {args.out}, TLS files to "
          f"{args.out}/tls/ and {config}; give each hall its password from {args.out}/credentials.toml "
          f"and {args.out}/tls/ca.crt")
    return 0


def _region_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.region.bridge import BridgeError, HallEntry, add_bridge, bridge_section

    password = args.password_file.read_text(encoding="utf-8").strip()
    entry = HallEntry(args.hall, args.district)
    try:
        add_bridge(args.broker_config,
                   bridge_section(entry, args.region_host, args.region_port, password, args.region_ca))
    except (OSError, BridgeError) as exc:
        print(f"无法配置桥接 / cannot add the bridge: {exc}", file=sys.stderr)
        return 1
    args.broker_config.chmod(0o600)  # it now holds the bridge's password
    print(f"{args.broker_config}: bridge to {args.region_host}:{args.region_port} as {entry.account}; "
          "set HALL_REGION_FORWARD=true for the coordinator and restart the broker")
    return 0


def add_region_commands(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = roles.add_parser("region-export", help="好差评 records of a day range as the province's "
                              "CSV or JSON file")
    export.add_argument("--db", help="PostgreSQL URL (default: settings.region_database_url)")
    export.add_argument("--profile", help="province profile name or .toml file (default: settings)")
    export.add_argument("--from", dest="first", required=True, help="first business day, YYYY-MM-DD")
    export.add_argument("--to", dest="last", help="last business day (default: --from)")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="file format (default: csv)")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.set_defaults(run=_region_export)
    push = roles.add_parser("region-push", help="queue a new layout version for a hall (applied there "
                            "without stopping it)")
    push.add_argument("--db", help="PostgreSQL URL (default: settings.region_database_url)")
    push.add_argument("--hall", required=True, help="hall id")
    push.add_argument("--layout", type=Path, required=True, help="the hall's whole new layout file")
    push.add_argument("--version", type=int, help="version number (default: the hall's next)")
    push.set_defaults(run=_region_push)
    rweb = roles.add_parser("region-web", help="the regional dashboard (TLS with --tls-cert/--tls-key)")
    rweb.add_argument("--db", help="PostgreSQL URL (default: settings.region_database_url)")
    rweb.add_argument("--users", type=Path, required=True, help="users file (roles region_manager, auditor)")
    rweb.add_argument("--audit", type=Path, help="audit trail, SQLite, created 0600 (default: "
                      "region-audit.sqlite3 beside the users file)")
    rweb.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    rweb.add_argument("--port", type=int, default=8443, help="port to listen on (default: 8443)")
    rweb.add_argument("--tls-cert", type=Path, help="server certificate (PEM); without it plain HTTP")
    rweb.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    rweb.add_argument("--trusted-proxies", default="", help="reverse proxies (IP addresses or networks, "
                      "comma-separated) whose X-Forwarded-For names the browser (default: none)")
    rweb.set_defaults(run=_region_web)
    prov = roles.add_parser("region-provision", help="the regional broker's accounts (one per hall), "
                            "ACL, TLS and mosquitto.conf")
    prov.add_argument("--halls", type=Path, required=True, help="TOML: [[halls]] id, district (6 digits)")
    prov.add_argument("--out", type=Path, required=True, help="folder to write the broker's files to")
    prov.add_argument("--tls-host", action="append", help="name or address of the regional broker")
    prov.add_argument("--port", type=int, default=1883, help="plain MQTT port, local only (default: 1883)")
    prov.add_argument("--bind", default="127.0.0.1", help="address of the plain port (default: 127.0.0.1)")
    prov.add_argument("--tls-port", type=int, default=8883, help="TLS port for the halls (default: 8883)")
    prov.add_argument("--tls-bind", default="0.0.0.0", help="address of the TLS port (default: 0.0.0.0)")
    prov.add_argument("--broker-user", default="mosquitto", help="the account Mosquitto runs as")
    prov.set_defaults(run=_region_provision)
    bridge = roles.add_parser("region-bridge", help="add the bridge to the region to a hall's "
                              "rendered mosquitto.conf")
    bridge.add_argument("--broker-config", type=Path, required=True, help="the hall's mosquitto.conf")
    bridge.add_argument("--hall", required=True, help="this hall's id")
    bridge.add_argument("--district", required=True, help="行政区划代码 (GB/T 2260)")
    bridge.add_argument("--region-host", required=True, help="name or address of the regional broker")
    bridge.add_argument("--region-port", type=int, default=8883, help="the regional broker's TLS port")
    bridge.add_argument("--region-ca", type=Path, required=True, help="the region's ca.crt")
    bridge.add_argument("--password-file", type=Path, required=True,
                        help="a file holding the hall's password on the regional broker")
    bridge.set_defaults(run=_region_bridge)
