"""The deployment examples in deploy/ and the settings the README names, checked against the code they configure;
and, on real servers, the two facts a load-balanced deployment rests on: uvicorn builds the OGC API's links from
the balancer's headers only when FORWARDED_ALLOW_IPS trusts it, and app processes on one PostGIS database share
every write, token revocation and ETag (their caches are per process, keyed by the store's layer versions)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer.main
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.cli import app as cli_app
from geoplan.cli import main as cli_main
from geoplan.services.store_setup import init_store
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR, ROOT
from tests.web.live_server import free_port, serving
from web.app import create_app
from web.settings import WebSettings
from web.uploads import FORM_OVERHEAD

DEPLOY = ROOT / "deploy"
NGINX = DEPLOY / "nginx.conf.example"
SERVICE = DEPLOY / "geoplan-web.service.example"
ENV_FILE = DEPLOY / "geoplan.env.example"
VARIABLE = re.compile(r"\bGEOPLAN_[A-Z0-9_]+\b")
# Where a GEOPLAN_* name that is not a setting may be read instead (the CLI, the scripts, the test harness).
READERS = [
    *ROOT.glob("geoplan/**/*.py"),
    *ROOT.glob("web/**/*.py"),
    *ROOT.glob("scripts/*"),
    ROOT / "tests/conftest.py",
]
HOST = "map.example.gov.cn"


def _settings_fields() -> set[str]:
    return {f"GEOPLAN_{name.upper()}" for name in WebSettings.model_fields}


def _read_elsewhere(name: str) -> bool:
    return any(path.is_file() and name in path.read_text(encoding="utf-8") for path in READERS)


def _directives(config: str) -> list[tuple[str, list[str]]]:
    """nginx directives as (name, arguments), comments dropped; block openers keep their arguments."""
    text = re.sub(r"#[^\n]*", "", config)
    return [
        (parts[0], parts[1:])
        for statement in re.split(r"[;{}]", text)
        if (parts := shlex.split(statement.strip(), posix=False))
    ]


def _exec_start() -> list[str]:
    lines = [line for line in SERVICE.read_text(encoding="utf-8").splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, "the unit has one ExecStart"
    return shlex.split(lines[0].removeprefix("ExecStart="))


# --------------------------------------------------------------------------------------------- static checks


def test_every_geoplan_variable_named_in_the_readme_and_deploy_examples_exists() -> None:
    fields = _settings_fields()
    sources = [ROOT / "README.md", *sorted(DEPLOY.iterdir())]
    named = {(path.name, name) for path in sources for name in VARIABLE.findall(path.read_text(encoding="utf-8"))}
    assert any(source == ENV_FILE.name for source, _ in named)
    unknown = sorted((source, name) for source, name in named if name not in fields and not _read_elsewhere(name))
    assert unknown == [], f"GEOPLAN_* names that no setting or script reads: {unknown}"


def test_the_env_example_holds_valid_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {}
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key] = value
    assert set(entries) <= _settings_fields(), set(entries) - _settings_fields()
    for name in list(os.environ):
        if name.startswith("GEOPLAN_"):
            monkeypatch.delenv(name)
    for key, value in entries.items():
        monkeypatch.setenv(key, value)
    settings = WebSettings()  # pydantic refuses a value of the wrong type or outside a Literal
    assert settings.store == entries["GEOPLAN_STORE"]
    assert settings.store.startswith("postgresql://"), "several app hosts need the PostGIS store"
    assert settings.basemap == entries["GEOPLAN_BASEMAP"]


def test_the_service_example_starts_a_real_command_reachable_by_the_balancer() -> None:
    argv = _exec_start()
    assert Path(argv[0]).name == "geoplan" and argv[1] == "serve"
    serve = typer.main.get_command(cli_app).commands["serve"]  # type: ignore[attr-defined]
    known = {opt for param in serve.params for opt in param.opts}
    given = [arg for arg in argv[2:] if arg.startswith("--")]
    assert given and set(given) <= known, set(given) - known
    host = argv[argv.index("--host") + 1]
    assert not host.startswith("127.") and host != "localhost", "a balancer on another host cannot reach loopback"
    text = SERVICE.read_text(encoding="utf-8")
    assert re.search(r"^Environment=FORWARDED_ALLOW_IPS=\S+", text, re.M), "uvicorn would ignore X-Forwarded-*"
    env_file = re.search(r"^EnvironmentFile=(\S+)", text, re.M)
    assert env_file is not None and Path(env_file.group(1)).name == ENV_FILE.name.removesuffix(".example")


def test_the_nginx_example_sends_the_app_its_real_routes_port_and_upload_size(catalog: Catalog, tmp_path: Path) -> None:
    directives = _directives(NGINX.read_text(encoding="utf-8"))
    upstreams = [args[0] for name, args in directives if name == "upstream"]
    assert len(upstreams) == 1
    servers = [args[0] for name, args in directives if name == "server" and args and ":" in args[0]]
    argv = _exec_start()
    port = argv[argv.index("--port") + 1]
    assert len(servers) >= 2 and all(s.rsplit(":", 1)[1] == port for s in servers), (servers, port)
    passes = [args[0] for name, args in directives if name == "proxy_pass"]
    assert passes and all(p == f"http://{upstreams[0]}" for p in passes)

    (size,) = [args[0] for name, args in directives if name == "client_max_body_size"]
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()  # type: ignore[union-attr]
    limit = int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]
    assert limit >= WebSettings().max_upload_bytes + FORM_OVERHEAD, "nginx would refuse uploads the app accepts"

    locations = [args for name, args in directives if name == "location"]
    assert locations
    path = tmp_path / "store.gpkg"
    store = GeoPackageStore(path, catalog)
    init_store(store)
    store.close()
    with TestClient(create_app(WebSettings(store=str(path), layers_dir=LAYERS_DIR))) as client:
        for args in locations:  # `location = /x` or `location /prefix`: the app answers there
            where = args[-1]
            assert client.get(where).status_code == 200, f"location {' '.join(args)}: the app has no page there"
    headers = {args[0].lower(): args[1] for name, args in directives if name == "proxy_set_header"}
    assert headers.get("host") == "$host"
    assert headers.get("x-forwarded-proto") == "$scheme"
    assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for"


# --------------------------------------------------------------------------------------------- real servers


@contextmanager
def served(store: str, log_path: Path, **env: str) -> Iterator[str]:
    """`geoplan serve` (as the unit runs it) on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    environment = {**os.environ, "GEOPLAN_LAYERS_DIR": str(LAYERS_DIR), **env}
    command = [sys.executable, "-m", "geoplan", "serve", "--store", store, "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, port=port, env=environment, log_path=log_path, name="geoplan serve", timeout=60) as base:
        yield base


def _call(url: str, *, method: str = "GET", body: Any = None, **headers: str) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(response.read() or b"null"),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, None


def test_ogc_links_follow_the_balancer_only_when_forwarded_allow_ips_trusts_it(
    catalog: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "store.gpkg"
    store = GeoPackageStore(path, catalog)
    init_store(store)
    store.close()
    behind_proxy = {"Host": HOST, "X-Forwarded-Proto": "https"}
    allowed = json.dumps([HOST])  # a Host header reaches links only when allow-listed (or GEOPLAN_PUBLIC_URL)
    with ExitStack() as stack:
        trusted = stack.enter_context(
            served(str(path), tmp_path / "a.log", FORWARDED_ALLOW_IPS="127.0.0.1", GEOPLAN_ALLOWED_HOSTS=allowed)
        )
        other = stack.enter_context(
            served(str(path), tmp_path / "b.log", FORWARDED_ALLOW_IPS="10.0.0.10", GEOPLAN_ALLOWED_HOSTS=allowed)
        )
        plain = stack.enter_context(served(str(path), tmp_path / "c.log", FORWARDED_ALLOW_IPS="127.0.0.1"))
        _, _, landing = _call(f"{trusted}/ogc", **behind_proxy)
        assert landing["links"][0]["href"] == f"https://{HOST}/ogc"
        _, _, landing = _call(f"{other}/ogc", **behind_proxy)  # the peer (loopback) is not the trusted balancer
        assert landing["links"][0]["href"] == f"http://{HOST}/ogc"
        _, _, landing = _call(f"{plain}/ogc", **behind_proxy)  # Host not allow-listed: the server's own address
        assert landing["links"][0]["href"] == f"https://{plain.split('://', 1)[1]}/ogc"


@pytest.mark.postgis
def test_app_processes_on_one_postgis_share_writes_tokens_and_etags(postgis_url: str, tmp_path: Path) -> None:
    assert cli_main(["db", "init", "--store", postgis_url]) == 0  # once, before the processes start
    registry = TokenRegistry(side_table_engine(postgis_url))
    token = registry.create(name="deploy-test", role=Role.STAFF)
    auth = {"Authorization": f"Bearer {token}"}
    items = "/ogc/collections/culture_facilities/items"
    name = "负载均衡测试文化站"
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [112.80, 22.90]},
        "properties": {"facility_id": "CF-LB-1", "name": name, "kind": "文化站", "capacity": 80},
    }
    try:
        with ExitStack() as stack:
            a = stack.enter_context(served(postgis_url, tmp_path / "a.log"))
            b = stack.enter_context(served(postgis_url, tmp_path / "b.log"))
            status_a, headers_a, before = _call(a + items)
            status_b, headers_b, _ = _call(b + items)
            assert (status_a, status_b, before["numberMatched"]) == (200, 200, 0)
            assert headers_a["etag"] == headers_b["etag"]

            status, _, written = _call(
                f"{a}/api/layers/culture_facilities/features", method="POST", body=feature, **auth
            )
            assert (status, written["ids"]) == (201, ["CF-LB-1"])
            status, headers_b2, after = _call(b + items)  # B's cache was built before the write
            assert status == 200 and [f["id"] for f in after["features"]] == ["CF-LB-1"]
            assert after["features"][0]["properties"]["name"] == name
            assert headers_b2["etag"] != headers_b["etag"]
            assert _call(a + items)[1]["etag"] == headers_b2["etag"]
            status, _, audit = _call(f"{b}/api/audit?layer=culture_facilities", **auth)
            assert status == 200 and (audit[0]["actor"], audit[0]["detail"]["ids"]) == (
                "staff:deploy-test",
                ["CF-LB-1"],
            )

            registry.revoke("deploy-test")
            assert _call(f"{a}/api/audit?limit=1", **auth)[0] == 401
            assert _call(f"{b}/api/audit?limit=1", **auth)[0] == 401
    finally:
        registry.close()
