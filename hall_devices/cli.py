"""The ``hall-devices`` command: one subcommand per role or tool."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hall_devices.contract import contract_markdown
from hall_devices.layout import Layout, LayoutError, load_layout
from hall_devices.registry import add_role_commands
from hall_devices.role_spec import LAYOUT_HELP, load_or_say
from hall_devices.settings import Settings, SettingsError, load_settings

Command = Callable[[argparse.Namespace, Settings], int]
CONTRACT_DOC = Path("docs/contract.md")


def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.masked(), ensure_ascii=False, indent=2))
    return 0


def _layout_check(args: argparse.Namespace, settings: Settings) -> int:
    notes: list[str] = []
    try:
        layout = load_layout(args.file, notes)
    except LayoutError as exc:
        print(f"布局文件有误 / layout has problems: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {args.file}: {len(layout.departments)} departments, {len(layout.services)} services, "
          f"{len(layout.windows)} windows, {len(layout.devices)} devices")
    for note in notes:
        print(f"注意 / warning: {note}", file=sys.stderr)
    from hall_devices.ops.ports import local_ports

    # A warning, not a failure: a layout names the ports of every PC of the hall.
    for use in local_ports(layout):
        if not Path(use.path).exists():
            print(f"注意 / warning: {use.device_id}: 串口 {use.path} 不在本机"
                  f"（若该设备接在其他电脑上可忽略）/ {use.path} is not on this PC "
                  "(fine if that device is cabled to another PC)",
                  file=sys.stderr)
    _calendar_warning(layout, args.today)
    return 0


def _calendar_warning(layout: Layout, today: str | None) -> None:
    """A warning, not a failure: working days then fall back to Monday–Friday."""
    import datetime as dt

    from hall_devices.coordinator.calendar import library_years, local, uncovered_years

    day = dt.date.fromisoformat(today) if today else local(layout.hall, dt.datetime.now(dt.UTC)).date()
    for year in uncovered_years(layout.policy, day):
        known = sorted(library_years())
        print(f"警告：{year} 年的法定节假日和调休上班日未知（chinesecalendar 已知 {known[0]}–"
              f"{known[-1]} 年）："
              f"请升级 chinesecalendar，或在 [policy] 的 holidays / extra_working_days 中填写 / "
              f"warning: the holidays and make-up working days of {year} are unknown (chinesecalendar "
              f"knows {known[0]}–{known[-1]}): upgrade it, or list them in [policy] holidays / "
              "extra_working_days", file=sys.stderr)


def _layout_generate(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.layout import parse_layout
    from hall_devices.ops.generate import generate

    template = load_or_say(args.template)
    if template is None:
        return 1
    text = generate(template, args.windows, args.kiosks, args.per_bus)
    parse_layout(text, str(args.out))  # what it writes is a valid layout, or this raises
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {args.windows} windows, {args.kiosks} kiosks")
    return 0


def _contract_docs(args: argparse.Namespace, settings: Settings) -> int:
    text = contract_markdown()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `hall-devices contract docs`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _broker_provision(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.ops.broker import Listeners, render_config
    from hall_devices.ops.provision import ProvisionError, provision

    try:
        layout = load_layout(args.layout)
    except LayoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        done = provision(layout, args.out, tls_hosts=args.tls_host or None, demo=args.demo,
                         watchers=args.watcher or ())
    except ProvisionError as exc:
        print(f"无法配置 / cannot provision: {exc}", file=sys.stderr)
        return 1
    config = render_config(args.out, Listeners(port=args.port, bind=args.bind, tls_port=args.tls_port,
                                               tls_bind=args.tls_bind, dev_port=args.dev_port,
                                               run_as=args.broker_user))
    print(f"wrote {len(done.credentials)} users to {args.out}/passwd, the ACL to {args.out}/acl, "
          f"TLS files to {args.out}/tls/ and {config}")
    if done.tls.startswith("renewed"):
        print(f"服务器证书已更新 / server certificate {done.tls}; the CA is unchanged: "
              "restart the broker (systemctl restart hall-broker)")
    print(f"start the broker: mosquitto -c {config}")
    return 0


def _broker_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.ops.provision import ProvisionError, rotate_password

    try:
        rotate_password(args.out, args.user)
    except (ProvisionError, OSError) as exc:
        print(f"无法更换密码 / cannot rotate the password: {exc}", file=sys.stderr)
        return 1
    print(f"new password of {args.user} in {args.out}/credentials.toml (the old one no longer works "
          f"after `systemctl reload hall-broker`): put it in that device's /etc/hall/{args.user}.env")
    return 0


def _booking_openapi(args: argparse.Namespace, _settings: Settings) -> int:
    from hall_devices.web.booking_openapi import with_openapi

    text = args.doc.read_text(encoding="utf-8")
    wanted = with_openapi(text)
    if args.check:
        print(f"{args.doc} is {'up to date' if text == wanted else 'out of date: run without --check'}")
        return 0 if text == wanted else 1
    args.doc.write_text(wanted, encoding="utf-8")
    print(f"wrote {args.doc}")
    return 0


def _booking_client(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.web.api_clients import ApiClientsError, add_client

    path = settings.data_dir / "api-clients.json"
    try:
        token = add_client(path, args.name)
    except ApiClientsError as exc:
        print(f"无法添加 / cannot add: {exc}", file=sys.stderr)
        return 1
    print(f"booking platform client {args.name!r} added to {path}; its token (shown only now):\n{token}")
    return 0


def _store_backup(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from hall_devices.coordinator.backup import take_backup
    from hall_devices.coordinator.store import StoreError, backup

    store = args.store or settings.sqlite_path()
    try:
        if args.to is not None:
            print(f"backed up {backup(store, args.to)} events to {args.to}")
            return 0
        done = take_backup(store, args.dir or settings.backup_dir, datetime.now(UTC),
                           args.keep_days or settings.backup_keep_days)
    except (StoreError, OSError) as exc:
        print(f"备份失败 / backup failed: {exc} (the store is set by HALL_DATABASE_URL or --store; "
              "on an installed server run `sudo systemctl start hall-backup.service`)", file=sys.stderr)
        return 1
    print(f"备份完成 / backed up {done.events} events to {done.file}")
    for old in done.removed:
        print(f"removed old backup {old}")
    return 0


def _store_restore(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from hall_devices.coordinator.backup import restore
    from hall_devices.coordinator.calendar import business_day
    from hall_devices.coordinator.store import StoreError

    layout = load_or_say(args.layout or settings.layout)
    if layout is None:
        return 1
    now = datetime.now(UTC)
    try:
        done = restore(args.backup, args.store or settings.sqlite_path(), now,
                       business_day(layout.hall, now), sorted({s.prefix for s in layout.services}),
                       assume_issued=args.assume_issued)
    except (StoreError, OSError) as exc:
        print(f"恢复失败 / restore failed: {exc}", file=sys.stderr)
        return 1
    print("恢复完成 / " + done.describe())
    print("start the coordinator now: sudo systemctl start hall-coordinator")
    return 0


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from hall_devices.coordinator.calendar import local
    from hall_devices.coordinator.store import StoreError, open_read_only, read_dead_letters

    layout = load_or_say(args.layout or settings.layout)  # for the hall's time
    if layout is None:
        return 1
    try:
        db = open_read_only(args.store or settings.sqlite_path())
    except StoreError as exc:
        print(f"无法读取 / cannot read: {exc}", file=sys.stderr)
        return 1
    try:
        letters = read_dead_letters(db, args.limit)
    finally:
        db.close()
    print(f"未能处理的消息（最新在前）/ dead letters, newest first: {len(letters)}")
    for one in letters:
        at = local(layout.hall, datetime.fromisoformat(one.at)).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{at}  {one.topic}  {one.command or '-'}\n    {one.error}\n    {one.excerpt[:200]}")
    return 0


def _messages(args: argparse.Namespace, settings: Settings) -> int:
    """The message catalog: what people read for each refusal code (support staff look a code up
    from a log line here)."""
    from hall_devices.catalog import CATALOG, say

    codes = [args.code] if args.code else sorted(CATALOG)
    for code in codes:
        if code not in CATALOG:
            print(f"没有该代码 / no such code: {code!r}", file=sys.stderr)
            return 1
        print(f"{code}\n  {say(code, 'zh')}\n  {say(code, 'en')}")
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from hall_devices.coordinator.calendar import business_day
    from hall_devices.coordinator.report import render_report

    layout = load_or_say(args.layout or settings.layout)
    if layout is None:
        return 1
    store = args.store or settings.sqlite_path()
    # Without --date: the hall's business day now, in the hall's time zone (not this machine's).
    first = args.date or business_day(layout.hall, datetime.now(UTC))
    try:
        print(render_report(layout, store, first, args.to or first, args.format), end="")
    except ValueError as exc:
        print(f"报表失败 / report failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.demo.up import UpOptions, run_up

    layout = load_or_say(args.layout)
    if layout is None:
        return 1
    if args.region:  # issue 20: N halls and their region
        from hall_devices.region.up import run_region

        return run_region(args.region, args.layout, args.data_dir / "region-demo", args.speed,
                          args.duration, web_port=args.region_web_port)
    from hall_devices.ops.broker import BrokerError

    # The kiosk and TV windows always run: on the display when there is one, offscreen else
    # (demo/up.py says which for each).
    try:
        return run_up(layout, UpOptions(args.layout, args.data_dir, args.port, not args.no_traffic,
                                        args.speed, args.duration, screens=True))
    except BrokerError as exc:  # e.g. the port is taken: one line, not a traceback
        print(f"大厅无法启动 / the hall cannot start: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hall_devices")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hall-devices", description="政务服务大厅设备 / hall devices")
    parser.add_argument("--config", type=Path, help="settings TOML file (also HALL_CONFIG_FILE)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_tools(commands)
    add_role_commands(commands)
    _add_hall(commands)
    from hall_devices.ops.cli import add_ops

    add_ops(commands)
    from hall_devices.region.cli import add_region_commands  # issue 20

    add_region_commands(commands)
    return parser


def _add_lookups(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``config show`` and ``messages``: what a role will use, and what people read for a code."""
    config = roles.add_parser("config", help="settings").add_subparsers(dest="sub", required=True)
    config.add_parser("show", help="print the effective settings, secrets masked").set_defaults(
        run=_config_show)
    messages = roles.add_parser("messages", help="the message catalog: the words people read for each "
                                "refusal code")
    messages.add_argument("code", nargs="?", help="one code (e.g. unknown_appointment); none: all")
    messages.set_defaults(run=_messages)


def _add_tools(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_lookups(roles)

    layout = roles.add_parser("layout", help="hall layout file").add_subparsers(dest="sub", required=True)
    check = layout.add_parser("check", help="validate a layout file")
    check.add_argument("file", type=Path, help="layout TOML file to check")
    check.add_argument("--today", help="check the holiday calendar as of this day (YYYY-MM-DD)")
    check.set_defaults(run=_layout_check)
    gen = layout.add_parser("generate", help="a layout of N windows and K kiosks, for scale tests")
    gen.add_argument("--windows", type=int, required=True, help="number of windows to generate")
    gen.add_argument("--kiosks", type=int, default=2, help="number of kiosks (default 2)")
    gen.add_argument("--per-bus", type=int, default=30, help="screens or pads per RS-485 bus")
    gen.add_argument("--template", type=Path, default=Path("examples/hall.toml"),
                     help="layout whose departments and services are used")
    gen.add_argument("--out", type=Path, required=True, help="layout file to write")
    gen.set_defaults(run=_layout_generate)

    contract = roles.add_parser("contract", help="MQTT contract").add_subparsers(dest="sub", required=True)
    docs = contract.add_parser("docs", help="write docs/contract.md from contract.py")
    docs.add_argument("--out", type=Path, default=CONTRACT_DOC, help="where the contract document goes")
    docs.add_argument("--check", action="store_true", help="only check that it is up to date")
    docs.set_defaults(run=_contract_docs)

    broker = roles.add_parser("broker", help="Mosquitto set-up").add_subparsers(dest="sub", required=True)
    prov = broker.add_parser("provision", help="credentials, ACL, TLS and mosquitto.conf from a layout")
    prov.add_argument("layout", type=Path, help="the hall's layout file")
    prov.add_argument("--out", type=Path, required=True,
                      help="folder for passwd, acl, credentials, tls/")
    prov.add_argument("--port", type=int, default=1883, help="plain MQTT port (default 1883)")
    prov.add_argument("--bind", default="127.0.0.1", help="address of the plain port (default: this host)")
    prov.add_argument("--tls-port", type=int, default=8883, help="MQTT over TLS port (default 8883)")
    prov.add_argument("--tls-bind", default="0.0.0.0", help="address of the TLS port (default: all)")
    prov.add_argument("--tls-host", action="append", help="server name or IP for the certificate")
    prov.add_argument("--dev-port", type=int, help="also an anonymous listener on 127.0.0.1 (development)")
    prov.add_argument("--broker-user", default=getpass.getuser(),
                      help="account mosquitto runs as; it must own the files written here")
    prov.add_argument("--demo", action="store_true", help="add the demo traffic generator's user")
    prov.add_argument("--watcher", action="append", metavar="NAME",
                      help="an extra read-only account (one per person or tool watching the bus)")
    prov.set_defaults(run=_broker_provision)
    _add_rotate(broker)

    store = roles.add_parser("store", help="the coordinator's event store").add_subparsers(
        dest="sub", required=True)
    copy = store.add_parser("backup", help="a consistent copy of the live store")
    copy.add_argument("--to", type=Path, help="a new file (default: a timestamped file in --dir)")
    copy.add_argument("--dir", type=Path, help="backup folder (default: settings.backup_dir)")
    copy.add_argument("--keep-days", type=int, help="remove older backups (default: settings)")
    copy.add_argument("--store", type=Path, help="SQLite file (default: from database_url)")
    copy.set_defaults(run=_store_backup)
    _add_restore(store)
    _add_dead_letters(store)

    report = roles.add_parser("report", help="daily statistics from the coordinator's store")
    report.add_argument("--date", help="YYYY-MM-DD first day (default: the hall's business day now)")
    report.add_argument("--to", help="YYYY-MM-DD last day of a range (default: --date)")
    report.add_argument("--format", choices=["text", "csv", "json"], default="text", help="output format")
    report.add_argument("--layout", type=Path, help=LAYOUT_HELP)
    report.add_argument("--store", type=Path, help="SQLite file (default: from database_url)")
    report.set_defaults(run=_report)


def _add_rotate(broker: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = broker.add_parser("rotate-password", help="a new password for one device; others kept")
    rotate.add_argument("user", help="the device id (its broker username)")
    rotate.add_argument("--out", type=Path, required=True, help="the provisioned broker folder")
    rotate.set_defaults(run=_broker_rotate)


def _add_dead_letters(store: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dead = store.add_parser("dead-letters", help="commands the coordinator failed on (newest first)")
    dead.add_argument("--store", type=Path, help="SQLite file (default: from database_url)")
    dead.add_argument("--limit", type=int, default=50, help="how many to list (default: 50)")
    dead.add_argument("--layout", type=Path, help="layout file, for hall time (default: settings.layout)")
    dead.set_defaults(run=_dead_letters)


def _add_restore(store: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    back = store.add_parser("restore", help="replace the store by a backup; the coordinator must be stopped")
    back.add_argument("backup", type=Path, help="the backup file to restore")
    back.add_argument("--store", type=Path, help="SQLite file (default: from database_url)")
    back.add_argument("--layout", type=Path, help=LAYOUT_HELP)
    back.add_argument("--assume-issued", type=int,
                      help="when the replaced store is lost: numbers per prefix that may have been issued")
    back.set_defaults(run=_store_restore)


def _add_hall(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web_tools = roles.add_parser("web-user", help="web users").add_subparsers(dest="sub", required=True)
    from hall_devices.web.manage import add_parsers

    add_parsers(web_tools)
    clients = roles.add_parser("booking-client", help="the booking platform's API clients (tokens)"
                               ).add_subparsers(dest="sub", required=True)
    client_add = clients.add_parser(
        "add", help="add a client, or give it a new token; prints the token once")
    client_add.add_argument("name", help="the client's name (the booking platform)")
    client_add.set_defaults(run=_booking_client)
    client_doc = clients.add_parser("openapi", help="write the API's OpenAPI into docs/appointments.md")
    client_doc.add_argument("--doc", type=Path, default=Path("docs/appointments.md"),
                            help="the document to write (default: docs/appointments.md)")
    client_doc.add_argument("--check", action="store_true", help="only say whether it is up to date")
    client_doc.set_defaults(run=_booking_openapi)

    up = roles.add_parser("up", help="run the whole hall on simulated devices (demo)")
    up.add_argument("--layout", type=Path, default=Path("examples/hall.toml"), help="the hall's layout file")
    up.add_argument("--data-dir", type=Path, default=Path("var/hall"),
                    help="folder for the store, logs, credentials and voice files")
    up.add_argument("--port", type=int, help="broker port (default 18830, or a free one)")
    up.add_argument("--no-traffic", action="store_true", help="no simulated applicants and clerks")
    up.add_argument("--speed", type=float, default=60.0, help="demo time per real second (60: a minute)")
    up.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    up.add_argument("--region", type=int, metavar="N", help="N halls (broker, coordinator, traffic "
                    "each) and their region: broker, PostgreSQL, regional service and dashboard")
    up.add_argument("--region-web-port", type=int, default=8443, help="the regional dashboard's port")
    up.set_defaults(run=_up)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"配置有误 / settings problem: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Command = args.run
    try:
        return run(args, settings)
    except KeyboardInterrupt:
        # Ctrl-C before a command's own handling is in place (a role still loading its layout or
        # modules): one line, not Python's traceback; 130, as a shell reports a run cut by SIGINT.
        print("已中断 / interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
