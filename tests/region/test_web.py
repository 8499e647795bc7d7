"""The regional dashboard over TLS on a real uvicorn server, reading a real PostgreSQL."""

from __future__ import annotations

import http.cookiejar
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import uvicorn

from hall_devices.ops.broker import free_port
from hall_devices.ops.provision import make_tls
from hall_devices.region.db import RegionDb
from hall_devices.region.pgcluster import PgCluster
from hall_devices.region.web import create_region_app, load_region_users, write_region_users
from tests.region.conftest import fresh_database
from tests.region.test_outbox import forwarded, hall_day


@dataclass
class Site:
    base: str
    context: ssl.SSLContext
    db_url: str

    def client(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                           urllib.request.HTTPSHandler(context=self.context))

    def get(self, client: urllib.request.OpenerDirector, path: str) -> tuple[str, str]:
        with client.open(self.base + path, timeout=10) as answer:
            return answer.geturl(), answer.read().decode("utf-8")

    def login(self, client: urllib.request.OpenerDirector, name: str, password: str) -> str:
        form = urllib.parse.urlencode({"username": name, "password": password}).encode()
        with client.open(self.base + "/login", data=form, timeout=10) as answer:
            return str(answer.read().decode("utf-8"))


@pytest.fixture(scope="module")
def site(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = fresh_database(pg_cluster)
    db = RegionDb(url)
    db.register("h1", "420704")
    db.register("h2", "420702")
    db.apply("h1", 0, forwarded(hall_day()))
    db.close()
    folder: Path = tmp_path_factory.mktemp("region-web")
    make_tls(folder / "tls", ["localhost", "127.0.0.1"])
    write_region_users(folder / "users.toml",
                       {"chen": ("region_manager", "m-pass"), "audit": ("auditor", "a-pass")})
    app = create_region_app(url, load_region_users(folder / "users.toml"), "test-secret")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ssl_certfile=str(folder / "tls" / "server.crt"),
                                           ssl_keyfile=str(folder / "tls" / "server.key")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    context = ssl.create_default_context(cafile=str(folder / "tls" / "ca.crt"))
    yield Site(f"https://127.0.0.1:{port}", context, url)
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


def test_only_a_region_manager_may_act(site: Site) -> None:
    auditor, manager = site.client(), site.client()
    site.login(auditor, "audit", "a-pass")
    site.login(manager, "chen", "m-pass")
    _, page = site.get(auditor, "/hall/h1")
    assert 'id="retry"' not in page
    with pytest.raises(urllib.error.HTTPError) as refused:
        auditor.open(site.base + "/hall/h1/retry-reports", data=b"", timeout=10)
    assert refused.value.code == 403
    refused.value.close()
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
