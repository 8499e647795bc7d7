"""The regional dashboard over TLS on a real uvicorn server, reading a real PostgreSQL; its sign-in
has the hall web's defences (server-side sessions, throttling, Origin checks, security headers)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.cookiejar
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path

import psycopg
import pytest
import uvicorn
from starlette.types import ASGIApp

from hall_devices.ops.broker import free_port
from hall_devices.ops.provision import make_tls
from hall_devices.region.db import RegionDb
from hall_devices.region.pgcluster import PgCluster
from hall_devices.region.users import write_region_users
from hall_devices.region.web import create_region_app, region_web_config
from hall_devices.web.access import AccessOptions
from hall_devices.web.audit import AuditLog
from hall_devices.web.guard import ThrottleRules
from hall_devices.web.security import FORM_LIMIT, proxy_list
from hall_devices.web.users import hash_password
from tests.region.conftest import fresh_database
from tests.region.test_outbox import forwarded, hall_day
from tests.region.test_parking import spoiled
from tests.web.conftest import declare_oversize_form

FREE = 3  # failed sign-ins before the first wait
BACKOFF_S = 3.0  # the test's backoff: short, so the brute-force test can wait it out
Client = urllib.request.OpenerDirector


def lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: str
    url: str


@dataclass
class Site:
    base: str
    context: ssl.SSLContext
    db_url: str
    users: Path

    def client(self, origin: str | None = "") -> Client:
        """A browser with a cookie jar; its requests carry ``Origin`` (this site's unless given; None:
        no Origin header)."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                             urllib.request.HTTPSHandler(context=self.context))
        if origin is not None:
            opener.addheaders.append(("Origin", origin or self.base))
        return opener

    def copy(self, cookie: http.cookiejar.Cookie) -> Client:
        """Another machine presenting a copy of ``cookie`` (and this site's Origin)."""
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context))
        opener.addheaders += [("Cookie", f"{cookie.name}={cookie.value}"), ("Origin", self.base)]
        return opener

    def get(self, client: Client, path: str) -> tuple[str, str]:
        with client.open(self.base + path, timeout=10) as answer:
            return answer.geturl(), answer.read().decode("utf-8")

    def send(self, client: Client, path: str, form: dict[str, str] | None = None) -> Answer:
        """GET (``form`` None) or POST ``path``; any status is answered, redirects followed."""
        data = None if form is None else urllib.parse.urlencode(form).encode()
        try:
            with client.open(self.base + path, data=data, timeout=10) as answer:
                return Answer(answer.status, lower(answer.headers), answer.read().decode("utf-8"),
                              answer.geturl())
        except urllib.error.HTTPError as refused:
            with refused:
                return Answer(refused.code, lower(refused.headers), refused.read().decode("utf-8"),
                              refused.geturl())

    def login(self, client: Client, name: str, password: str) -> str:
        return self.send(client, "/login", {"username": name, "password": password}).body


def cookie_jar(client: Client) -> http.cookiejar.CookieJar:
    # urllib keeps an opener's handlers in .handlers, an attribute typeshed's OpenerDirector leaves out.
    handlers: list[urllib.request.BaseHandler] = vars(client)["handlers"]
    return next(h.cookiejar for h in handlers if isinstance(h, urllib.request.HTTPCookieProcessor))


def session_cookie(client: Client) -> http.cookiejar.Cookie:
    jar = cookie_jar(client)
    found = list(jar)
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def site(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = fresh_database(pg_cluster)
    db = RegionDb(url)
    db.register("h1", "420704")
    db.register("h2", "420702")
    db.apply("h1", 0, forwarded(hall_day()))
    # h2's rating is an event PostgreSQL refuses (a day that is none): parked, its record missing
    spoilt = spoiled(forwarded(hall_day())[:5], 4, "day", "2026-02-30")
    assert [p.seq for p in db.apply("h2", 0, spoilt)] == [5]
    db.close()
    folder: Path = tmp_path_factory.mktemp("region-web")
    make_tls(folder / "tls", ["localhost", "127.0.0.1"])
    write_region_users(folder / "users.toml",
                       {"chen": ("region_manager", "m-pass"), "audit": ("auditor", "a-pass"),
                        "lin": ("auditor", "l-pass"), "zhao": ("auditor", "z-pass"),
                        "wu": ("region_manager", "w-pass")})
    rules = ThrottleRules(free=FREE, backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S)
    options = AccessOptions(secure=True, demo=False, throttle=rules)
    app = create_region_app(url, folder / "users.toml", AuditLog(folder / "audit.sqlite3"), options)
    port = free_port()
    with serving(app, folder / "tls", port, []):
        context = ssl.create_default_context(cafile=str(folder / "tls" / "ca.crt"))
        yield Site(f"https://127.0.0.1:{port}", context, url, folder / "users.toml")


@contextlib.contextmanager
def serving(app: ASGIApp, tls: Path, port: int, proxies: list[str]) -> Iterator[None]:
    """``app`` served as ``hall-devices region-web`` serves it (its uvicorn configuration)."""
    server = uvicorn.Server(region_web_config(app, "127.0.0.1", port, tls_cert=tls / "server.crt",
                                              tls_key=tls / "server.key", proxies=proxies))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def test_every_page_needs_a_session_and_a_right_password(site: Site) -> None:
    client = site.client()
    landed, _ = site.get(client, "/compare")
    assert landed.endswith("/login")
    assert "用户名或密码错误" in site.login(client, "audit", "wrong")
    landed, _ = site.get(client, "/")
    assert landed.endswith("/login")
    with pytest.raises(OSError):  # plain HTTP is not served (the TLS port drops it)
        urllib.request.urlopen(site.base.replace("https", "http") + "/login", timeout=5)


def test_an_auditor_sees_every_hall_and_compares_them(site: Site) -> None:
    client = site.client()
    page = site.login(client, "audit", "a-pass")
    assert "审计（只读）" in page and 'data-hall="h1"' in page and 'data-hall="h2"' in page
    assert "420702" in page
    _, compare = site.get(client, "/compare?first=2026-11-30&last=2026-11-30")
    row = compare.split('data-hall="h1"')[1].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    # issued 2, served 2, waits 12 min each, one rating of two served: 满意率 0 %, 参评率 50 %, one 差评.
    assert cells[1:] == ["2", "2", "12.0 分钟", "12.0 分钟", "0.0%", "50.0%", "1", "0"]
    _, detail = site.get(client, "/hall/h1")
    assert "非常不满意" in detail and "等候太久、态度不好" in detail and "A001" in detail
    with pytest.raises(urllib.error.HTTPError) as missing:
        site.get(client, "/hall/nope")
    assert missing.value.code == 404
    missing.value.close()
    with pytest.raises(urllib.error.HTTPError) as backwards:
        site.get(client, "/compare?first=2026-12-02&last=2026-12-01")
    assert backwards.value.code == 400
    backwards.value.close()


def test_both_roles_see_each_halls_parked_events_and_a_rating_among_them(site: Site) -> None:
    for name, password in (("audit", "a-pass"), ("chen", "m-pass")):
        client = site.client()
        page = site.login(client, name, password)
        h1, h2 = (page.split(f'data-hall="{h}"')[1].split("</tr>")[0] for h in ("h1", "h2"))
        assert 'data-parked="0"' in h1 and 'data-parked="1"' in h2 and 'href="/hall/h2#parked"' in h2
        assert "搁置事件 Parked events" in page
        _, detail = site.get(client, "/hall/h2")
        rows = detail.split('id="parked-events"')[1].split("</table>")[0].split('<tr data-seq="')[1:]
        assert [r.split('"')[0] for r in rows] == ["5"]
        assert "rating_recorded" in rows[0] and "data-rating-missing" in rows[0] and "22008" in rows[0]
        # why in Chinese first; PostgreSQL's own English labelled as what the database said
        assert "数据格式或取值无效" in rows[0].split("data-postgresql-said")[0]
        assert "数据库原文" in rows[0].split("data-postgresql-said")[1].split("22008")[0]
        assert "2026-11-30 09:20" in rows[0]  # the hall's time of the rating, in China Standard Time
        assert "区域库拒收而搁置的事件" in detail and "好差评记录可能缺失" in detail
        _, detail = site.get(client, "/hall/h1")
        assert "data-rating-missing" not in detail and 'data-seq="' not in detail


def test_only_a_region_manager_may_act(site: Site) -> None:
    auditor, manager = site.client(), site.client()
    site.login(auditor, "audit", "a-pass")
    site.login(manager, "chen", "m-pass")
    _, page = site.get(auditor, "/hall/h1")
    assert 'id="retry"' not in page
    refused = site.send(auditor, "/hall/h1/retry-reports", {})
    assert refused.status == 403 and "not allowed for your role" in refused.body
    later = "UPDATE rating_records SET next_attempt_at = now() + interval '1 day'"
    due = "SELECT count(*) FROM rating_records WHERE next_attempt_at <= now()"
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        conn.execute(later)
        assert conn.execute(due).fetchone() == (0,)
    _, page = site.get(manager, "/hall/h1")
    assert 'id="retry"' in page
    with manager.open(site.base + "/hall/h1/retry-reports", data=b"", timeout=10) as answer:
        assert answer.geturl().endswith("/hall/h1")
    with psycopg.connect(site.db_url) as conn:
        assert conn.execute(due).fetchone() == (2,)  # both of h1's records are due again


def test_a_copied_cookie_is_refused_after_sign_out(site: Site) -> None:
    browser = site.client()
    site.login(browser, "chen", "m-pass")
    cookie = session_cookie(browser)
    assert cookie.name == "__Host-region_session" and cookie.secure
    assert cookie.has_nonstandard_attr("HttpOnly")
    copied = site.copy(cookie)
    landed, page = site.get(copied, "/")  # the copy works while the session lives
    assert landed == f"{site.base}/" and 'data-hall="h1"' in page
    out = site.send(browser, "/logout", {})
    assert out.url.endswith("/login?notice=signed_out") and "已退出" in out.body
    # The server has ended the session: the copy, presented from anywhere, is refused.
    landed, page = site.get(copied, "/hall/h1")
    assert landed.endswith("/login?notice=expired") and "登录已失效" in page and "A001" not in page
    assert site.send(copied, "/hall/h1/retry-reports", {}).url.endswith("/login?notice=expired")


def write_over(path: Path, text: str) -> None:
    """Replace ``path`` whole (a new file renamed over it), as an editor or a tool does."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o600)
    os.replace(temporary, path)


def test_a_password_change_in_the_users_file_ends_that_users_sessions(site: Site) -> None:
    here, there, other = site.client(), site.client(), site.client()
    site.login(here, "lin", "l-pass")
    site.login(there, "lin", "l-pass")  # the same user on another PC
    site.login(other, "chen", "m-pass")
    assert site.get(there, "/")[0] == f"{site.base}/"
    text = site.users.read_text(encoding="utf-8")
    old_hash = text.split('name = "lin"')[1].split('password = "')[1].split('"')[0]
    write_over(site.users, text.replace(old_hash, hash_password("l-new-pass")))
    for client in (here, there):
        landed, page = site.get(client, "/")
        assert landed.endswith("/login?notice=expired") and "登录已失效" in page
    assert site.get(other, "/")[0] == f"{site.base}/"  # another user's session carries on
    assert site.send(site.client(), "/login", {"username": "lin", "password": "l-pass"}).status == 401
    assert "审计（只读）" in site.login(here, "lin", "l-new-pass")


def test_changing_ones_password_ends_every_session_of_that_user(site: Site) -> None:
    browser, elsewhere, other = site.client(), site.client(), site.client()
    site.login(browser, "wu", "w-pass")
    site.login(elsewhere, "wu", "w-pass")  # the same user on another PC
    site.login(other, "chen", "m-pass")
    assert 'href="/account"' in site.get(browser, "/")[1]
    assert 'id="change"' in site.get(browser, "/account")[1]
    for current, new, again, status, problem in (
            ("wrong-one-1", "Winter-Hall-2031", "Winter-Hall-2031", 401, "current password is wrong"),
            ("w-pass", "short1", "short1", 400, "at least 10 characters"),
            ("w-pass", "Winter-Hall-2031", "Winter-Hall-2032", 400, "the new passwords differ")):
        answer = site.send(browser, "/account/password", {"current": current, "new": new, "confirm": again})
        assert answer.status == status and problem in answer.body
    assert site.get(elsewhere, "/")[0] == f"{site.base}/"  # nothing changed yet
    done = site.send(browser, "/account/password",
                     {"current": "w-pass", "new": "Winter-Hall-2031", "confirm": "Winter-Hall-2031"})
    assert done.url.endswith("/login?notice=password") and "密码已更改" in done.body
    assert site.get(elsewhere, "/")[0].endswith("/login?notice=expired")
    assert site.get(other, "/")[0] == f"{site.base}/"  # another user's session carries on
    assert site.send(site.client(), "/login", {"username": "wu", "password": "w-pass"}).status == 401
    assert "区域管理员" in site.login(browser, "wu", "Winter-Hall-2031")
    assert site.users.stat().st_mode & 0o777 == 0o600 and 'name = "lin"' in site.users.read_text()


def test_brute_force_is_throttled_then_the_real_user_signs_in(site: Site) -> None:
    site.login(site.client(), "chen", "m-pass")  # a success starts this address afresh

    def guess(i: int) -> int:
        return site.send(site.client(), "/login", {"username": "zhao", "password": f"guess-{i}"}).status

    with ThreadPoolExecutor(8) as pool:  # all at once: each attempt counts as it starts
        guesses = [pool.submit(guess, i) for i in range(8)]
        # Now even the right password waits, with a message in Chinese and English. Asked as soon
        # as the first refusal is back: the backoff runs from the attempt that began it, and the
        # guesses' password checks can outlast it on a loaded machine.
        assert next((g for g in as_completed(guesses) if g.result() == 429), None), "no guess throttled"
        locked = site.send(site.client(), "/login", {"username": "zhao", "password": "z-pass"})
        statuses = sorted(g.result() for g in guesses)
    assert statuses == [401] * FREE + [429] * (8 - FREE)
    assert locked.status == 429 and 1 <= int(locked.headers["retry-after"]) <= BACKOFF_S
    assert "尝试次数过多" in locked.body and "too many attempts: try again in" in locked.body
    time.sleep(int(locked.headers["retry-after"]) + 0.2)
    browser = site.client()
    page = site.login(browser, "zhao", "z-pass")
    assert "审计（只读）" in page and 'data-hall="h1"' in page


def test_a_cross_origin_post_is_refused(site: Site) -> None:
    manager = site.client()
    site.login(manager, "chen", "m-pass")
    cookie = session_cookie(manager)
    later = "UPDATE rating_records SET next_attempt_at = now() + interval '1 day'"
    due = "SELECT count(*) FROM rating_records WHERE next_attempt_at <= now()"
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        conn.execute(later)
    elsewhere = site.base.rsplit(":", 1)[0] + ":1"  # a page on another port of the same host
    for origin in (elsewhere, "null", None):
        forged = site.client(origin)
        forged.addheaders.append(("Cookie", f"{cookie.name}={cookie.value}"))
        refused = site.send(forged, "/hall/h1/retry-reports", {})
        assert refused.status == 403 and "来源不符" in refused.body, origin
        assert site.send(forged, "/logout", {}).status == 403
        assert site.send(forged, "/login", {"username": "chen", "password": "m-pass"}).status == 403
    with psycopg.connect(site.db_url) as conn:
        assert conn.execute(due).fetchone() == (0,)  # nothing was done
    assert site.get(manager, "/")[0] == f"{site.base}/"  # and the session was not signed out


def test_security_headers_on_every_page(site: Site) -> None:
    auditor = site.client()
    site.login(auditor, "audit", "a-pass")
    for client, path, status in ((site.client(), "/login", 200), (auditor, "/", 200),
                                 (auditor, "/hall/h1", 200), (auditor, "/hall/nope", 404),
                                 (auditor, "/hall/h1/retry-reports", 403), (auditor, "/static/app.css", 200)):
        answer = site.send(client, path, {} if path.endswith("retry-reports") else None)
        assert answer.status == status, path
        headers = answer.headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy, path
        scripts = policy.split("script-src")[1].split(";")[0]
        assert "'nonce-" in scripts and "unsafe-inline" not in scripts, path
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "same-origin" and headers["cache-control"] == "no-store", path
        assert headers["strict-transport-security"].startswith("max-age="), path


def test_who_did_what_is_in_the_audit_trail(site: Site) -> None:
    manager, auditor = site.client(), site.client()
    assert site.send(manager, "/login", {"username": "chen", "password": "not-it"}).status == 401
    site.login(manager, "chen", "m-pass")
    site.send(manager, "/hall/h1/retry-reports", {})
    site.send(manager, "/logout", {})
    site.login(auditor, "audit", "a-pass")
    _, page = site.get(auditor, "/audit?actor=chen")
    cells = [row.split('class="action" data-code="')[1] for row in page.split('<tr class="audit-')[1:]]
    rows = [cell.split('"')[0] for cell in cells]
    assert rows[:4] == ["sign_out", "retry_reports", "sign_in", "sign_in_failed"]  # newest first
    # in words for people, Chinese first: the code is in the attributes only
    assert [cell.split(">")[1].split("<")[0] for cell in cells[:4]] == [
        "退出登录 Sign out", "立即重报好差评 Report ratings now", "登录 Sign in", "登录失败 Failed sign-in"]
    assert '<td class="outcome" data-code="refused">拒绝 Refused</td>' in page
    assert '立即重报好差评 Report ratings now</option>' in page  # the filter's choices too
    assert "127.0.0.1" in page and "record(s) due now" in page
    _, csv = site.get(auditor, "/audit.csv?actor=chen")
    assert csv.startswith("\ufeffat,actor,address,action") and "retry_reports" in csv  # BOM for Excel
    assert site.send(auditor, "/audit?from=2026-13-01", None).status == 400


# A fresh reviewer's attacks (the ones that held are kept as regressions).

def test_a_planted_session_cookie_does_not_survive_the_victims_sign_in(site: Site) -> None:
    attacker = site.client()
    site.login(attacker, "zhao", "z-pass")
    planted = session_cookie(attacker)
    victim = site.client()
    jar = cookie_jar(victim)
    jar.set_cookie(planted)  # the attacker's cookie set in the victim's browser
    assert "区域管理员" in site.login(victim, "chen", "m-pass")
    assert session_cookie(victim).value != planted.value
    # The planted key neither became chen's session nor kept zhao's.
    assert site.get(site.copy(planted), "/")[0].endswith("/login?notice=expired")


def test_a_new_role_in_the_users_file_ends_the_session(site: Site) -> None:
    manager = site.client()
    site.login(manager, "wu", "Winter-Hall-2031")  # the password the change test set
    text = site.users.read_text(encoding="utf-8")
    entry = text.split('name = "wu"')[1].split("[[users]]")[0]
    write_over(site.users, text.replace(entry, entry.replace("region_manager", "auditor")))
    refused = site.send(manager, "/hall/h1/retry-reports", {})
    assert refused.url.endswith("/login?notice=expired")


def test_account_post_without_origin_or_referer_is_refused(site: Site) -> None:
    browser = site.client()
    site.login(browser, "lin", "l-new-pass")
    forged = site.client(None)
    forged.addheaders.append(("Cookie", f"{session_cookie(browser).name}={session_cookie(browser).value}"))
    answer = site.send(forged, "/account/password",
                       {"current": "l-new-pass", "new": "Evil-Hall-20311", "confirm": "Evil-Hall-20311"})
    assert answer.status == 403
    assert "审计（只读）" in site.login(site.client(), "lin", "l-new-pass")


def test_sign_in_goes_home_whatever_next_says(site: Site) -> None:
    answer = site.send(site.client(), "/login?next=https://evil.example/",
                       {"username": "lin", "password": "l-new-pass", "next": "//evil.example/"})
    assert answer.url == f"{site.base}/"


def test_odd_inputs_are_answered_not_500(site: Site) -> None:
    auditor = site.client()
    site.login(auditor, "audit", "a-pass")
    for path in ("/hall/%00", "/hall/a%00b", "/?day=%00", "/compare?first=%00&last=9999-12-31",
                 "/compare?first=0001-01-01&last=9999-12-31", "/audit?actor=%00&action=%00",
                 "/audit.csv?from=2026-13-01", "/static/..%2Fapp.py"):
        answer = site.send(auditor, path)
        assert answer.status < 500, (path, answer.status)
    for form in ({"username": "\x00", "password": "\x00"}, {"username": "x" * 10_000, "password": ""},
                 {}):
        assert site.send(site.client(), "/login", form).status < 500, form


def test_x_forwarded_for_is_believed_only_from_a_named_proxy(site: Site, tmp_path: Path) -> None:
    # By default the peer's address is the browser's: a forged header changes neither the audit
    # trail nor the address throttle (uvicorn alone believes it from 127.0.0.1).
    forged = site.client()
    forged.addheaders.append(("X-Forwarded-For", "203.0.113.7"))
    assert patiently(site, forged, {"username": "xff-forged", "password": "x"}).status == 401
    audit_db = site.users.parent / "audit.sqlite3"
    assert [e.address for e in AuditLog(audit_db).entries(actor="xff-forged")] == ["127.0.0.1"]
    with pytest.raises(ValueError, match=r"--trusted-proxies: '\*' is not an IP address or network"):
        proxy_list("*", "--trusted-proxies")
    # Behind a proxy named with --trusted-proxies, the header names the browser; each guess may
    # then come from another address, and the user name's backoff still holds.
    audit = AuditLog(tmp_path / "audit.sqlite3")
    rules = ThrottleRules(free=FREE, backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S)
    options = AccessOptions(secure=True, demo=False, throttle=rules)
    app = create_region_app(site.db_url, site.users, audit, options)
    port = free_port()
    behind = replace(site, base=f"https://127.0.0.1:{port}")
    with serving(app, site.users.parent / "tls", port, proxy_list("127.0.0.1, ::1", "--trusted-proxies")):
        def guess(i: int) -> int:
            guesser = behind.client()
            guesser.addheaders.append(("X-Forwarded-For", f"198.51.100.{i + 1}"))
            return behind.send(guesser, "/login", {"username": "lin", "password": f"guess-{i}"}).status

        # All at once, as each attempt counts as it starts: one after the other, a guess waited for
        # the password check before it, which on a loaded machine outlasted the 3 s backoff.
        with ThreadPoolExecutor(FREE + 2) as pool:
            statuses = list(pool.map(guess, range(FREE + 2)))
        # A proxy passing on what the browser wrote: text that is no address names nobody.
        garbage = behind.client()
        garbage.addheaders.append(("X-Forwarded-For", "<b>garbage</b>"))
        assert behind.send(garbage, "/login", {"username": "xff-garbage", "password": "x"}).status == 401
    assert sorted(statuses) == [401] * FREE + [429] * 2
    assert [e.address for e in audit.entries(actor="xff-garbage")] == [""]
    addresses = [e.address for e in audit.entries(actor="lin") if e.action == "sign_in_failed"]
    checked = [f"198.51.100.{i + 1}" for i, status in enumerate(statuses) if status == 401]
    assert sorted(addresses) == sorted(checked), addresses


def patiently(site: Site, client: Client, form: dict[str, str]) -> Answer:
    """A sign-in, after this address's backoff (the attacks before left failures) if it is on."""
    answer = site.send(client, "/login", form)
    if answer.status == 429:
        time.sleep(int(answer.headers["retry-after"]) + 0.2)
        answer = site.send(client, "/login", form)
    return answer


def test_a_hostile_user_name_is_inert_in_the_audit_page_and_csv(site: Site) -> None:
    auditor = site.client()
    assert patiently(site, auditor, {"username": "audit", "password": "a-pass"}).url == f"{site.base}/"
    hostile = '=HYPERLINK("http://x")<script>alert(1)</script>'
    assert patiently(site, site.client(), {"username": hostile, "password": "x"}).status == 401
    _, page = site.get(auditor, "/audit?action=sign_in_failed")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    _, csv = site.get(auditor, "/audit.csv?action=sign_in_failed")
    assert "'=HYPERLINK" in csv and ',"=HYPERLINK' not in csv and ",=HYPERLINK" not in csv


def test_a_form_larger_than_the_limit_is_refused(site: Site) -> None:
    # The hall's Guard caps every form (web/security.py); the region's sign-in page is open to anyone.
    port = int(site.base.rsplit(":", 1)[1])
    refused = declare_oversize_form(port, site.context, site.base, "/login", FORM_LIMIT + 1)
    assert refused.status == 413 and "提交内容过大" in refused.body
    assert "审计（只读）" in site.login(site.client(), "zhao", "z-pass")  # a form within it still works


def test_a_parked_event_of_any_time_and_text_is_shown_not_500(site: Site) -> None:
    """A parked event is what a broken hall or a stolen account sent: a hall time Python cannot hold
    once in UTC or China time (year 1 at +14:00, the end of year 9999) made the hall's page a 500 for
    good, hiding its parked list, pushes and 差评; HTML in its kind or its refusal stays text."""
    db = RegionDb(site.db_url)
    try:
        db.register("h9", "420703")
        one = forwarded(hall_day())[0]
        odd = [one.model_copy(update={"seq": 1, "at": dt.datetime(1, 1, 1, tzinfo=dt.timezone(
                   dt.timedelta(hours=14))), "day": "2026-02-30"}),
               one.model_copy(update={"seq": 2, "at": dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC),
                                      "day": "2026-02-30"}),
               one.model_copy(update={"seq": 3, "kind": "<script>k()</script>", "day": "<b>x</b>"})]
        assert [p.seq for p in db.apply("h9", 0, odd)] == [1, 2, 3]
    finally:
        db.close()
    client = site.client()
    site.login(client, "audit", "a-pass")
    answer = site.send(client, "/hall/h9")
    assert answer.status == 200, answer.body[:300]
    rows = answer.body.split('id="parked-events"')[1].split("</table>")[0].split('<tr data-seq="')[1:]
    assert [r.split('"')[0] for r in rows] == ["3", "2", "1"]
    assert "0001-12-31 18:00 BC" in rows[2] and "10000-01-01 07:00" in rows[1]
    assert "<script>" not in answer.body.split('id="parked-events"')[1] and "<b>" not in rows[0]
    assert "&lt;script&gt;k()&lt;/script&gt;" in rows[0] and "&lt;b&gt;x&lt;/b&gt;" in rows[0]
    assert "数据格式或取值无效" in rows[1] and "数据格式或取值无效" in rows[0]


def test_a_driver_refusal_and_a_database_limit_are_said_in_words(site: Site) -> None:
    db = RegionDb(site.db_url)
    try:
        db.register("h7", "420703")
        day = spoiled(spoiled(forwarded(hall_day()), 1, "kind", "ticket_called\x00"), 2, "body",
                      "[" * 100_000 + "]" * 100_000)
        assert [(p.seq, p.sqlstate) for p in db.apply("h7", 0, day)] == [(2, None), (3, "54001")]
    finally:
        db.close()
    client = site.client()
    site.login(client, "audit", "a-pass")
    _, detail = site.get(client, "/hall/h7")
    rows = detail.split('id="parked-events"')[1].split("</table>")[0].split('<tr data-seq="')[1:]
    assert "超出数据库限制" in rows[0] and "含数据库无法保存的字符" in rows[1]


def test_a_parked_ticket_event_marks_its_ticket_s_rating_record_as_maybe_incomplete(site: Site) -> None:
    """A ticket's event parked, its 好差评 record is still made and sent, without what that event held
    (a parked ticket_finished: the 未评价 has no case number, window or clerk). The page said nothing."""
    db = RegionDb(site.db_url)
    try:
        db.register("h8", "420703")
        day = spoiled(spoiled(forwarded(hall_day()), 0, "day", "2026-02-30"), 8, "day", "2026-02-30")
        assert [p.seq for p in db.apply("h8", 0, day)] == [1, 9]
    finally:
        db.close()
    with psycopg.connect(site.db_url) as conn:
        made = {str(r[0]): r[1] for r in conn.execute(
            "SELECT record_id, record->>'case_number' FROM rating_records WHERE hall_id = 'h8'")}
    assert made == {"h8:r-1": "T1", "h8:unrated:P2": ""}  # sent all the same, the 未评价 without its case
    client = site.client()
    site.login(client, "chen", "m-pass")
    _, detail = site.get(client, "/hall/h8")
    rows = detail.split('id="parked-events"')[1].split("</table>")[0].split('<tr data-seq="')[1:]
    assert [r.split('"')[0] for r in rows] == ["9", "1"]
    assert all("data-rating-incomplete" in r and "好差评记录可能不全" in r for r in rows)
    assert not any("data-rating-missing" in r for r in rows)


def test_a_parked_kind_of_a_megabyte_does_not_weigh_the_page(site: Site) -> None:
    """A kind is any text up to the bus's limit: 200 such parked rows were 200 MB on the hall's page."""
    db = RegionDb(site.db_url)
    try:
        db.register("h6", "420703")
        one = forwarded(hall_day())[0].model_copy(update={"kind": "k" * 500_000, "day": "2026-02-30"})
        [parked] = db.apply("h6", 0, [one])
        assert len(parked.kind) == 100  # as logged
    finally:
        db.close()
    client = site.client()
    site.login(client, "audit", "a-pass")
    _, detail = site.get(client, "/hall/h6")
    assert "k" * 100 in detail and "k" * 101 not in detail and len(detail) < 20_000


def test_a_parked_event_stored_since_from_a_later_copy_is_marked_and_no_longer_counted(site: Site) -> None:
    """Junk a stolen account sent at a hall's next seq, parked; the hall's own event at that seq,
    stored in its place: the row stays on the hall's page, marked, and leaves the halls page's count."""
    db = RegionDb(site.db_url)
    try:
        db.register("h5", "420703")
        day = forwarded(hall_day())
        assert [p.seq for p in db.apply("h5", 0, spoiled(day, 4, "day", "2026-02-30"))] == [5]
        db.apply("h5", len(day), [day[0].model_copy(update={"seq": len(day) + 1, "day": "2026-02-30"})])
        assert db.store_copy("h5", day[4]).outcome == "stored"
    finally:
        db.close()
    client = site.client()
    page = site.login(client, "audit", "a-pass")
    assert 'data-parked="1"' in page.split('data-hall="h5"')[1].split("</tr>")[0]  # the other one
    _, detail = site.get(client, "/hall/h5")
    rows = detail.split('id="parked-events"')[1].split("</table>")[0].split('<tr data-seq="')[1:]
    assert [r.split('"')[0] for r in rows] == [str(len(day) + 1), "5"]
    assert "data-replaced" in rows[1] and "已由后到的同序号事件补存" in rows[1]
    assert "data-rating-missing" not in rows[1]  # its record is made now
    assert "data-replaced" not in rows[0]
