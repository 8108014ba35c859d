"""A fuzz run over the whole API from its own OpenAPI document (schemathesis), in process, on a copy of the demo
store: anonymous and with a token of each role. No answer may be a 5xx, and a refused write (4xx) must leave the
store file byte for byte as it was.

Deterministic (fixed seed, derandomized) and bounded: a few examples per operation, so the module runs in
about two and a half minutes on two cores (the demo store built once included).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis import Case, Config, HookContext
from schemathesis.python import asgi
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
    unsupported_method,
)

from geoplan.catalog import load_catalog
from geoplan.services.scenarios import create_scenario, remove_features
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens
from web.app import create_app
from web.settings import WebSettings

WRITES = {"POST", "PUT", "PATCH", "DELETE"}

CONFIG = Config.from_dict(
    {
        "seed": 13,
        "generation": {"max-examples": 3, "deterministic": True},
        # Only the methods a client could send by mistake; OPTIONS/TRACE/QUERY add minutes and find nothing new.
        "phases": {"coverage": {"unexpected-methods": ["DELETE", "PATCH"]}},
    }
)
EXCLUDED_CHECKS = [
    # The schema documents the happy path and 422; 400/401/403/404/413 are the house's typed refusals.
    status_code_conformance,
    # Generated "valid" bodies are valid JSON Schema but rarely valid geodata or an existing id: a 4xx is right.
    positive_data_acceptance,
    # Bodies the route reads itself are checked by the catalogue, not by the documented schema alone.
    negative_data_rejection,
    # GeoJSON, CSV, GeoPackage and HTML answers are served under their own media types, not the documented JSON.
    content_type_conformance,
    # 405 on a method a path does not serve is what Starlette answers; its Allow header is not the point here.
    unsupported_method,
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory, demo_store_path: Path) -> tuple[Path, Tokens]:
    path = tmp_path_factory.mktemp("fuzz") / "demo.gpkg"
    tokens = demo_store_with_tokens(path, source=demo_store_path)
    store = GeoPackageStore(path, load_catalog(LAYERS_DIR))
    try:  # a scenario of planner-1 with one edit, so the scenario routes get past their 404
        create_scenario(store, SCENARIO, author="planner:planner-1", token="planner-1")
        remove_features(store, SCENARIO, "culture_facilities", ["CF-0001"], actor="planner:planner-1")
    finally:
        store.close()
    return path, tokens


@pytest.fixture(scope="module")
def fuzz_client(fuzz_store: tuple[Path, Tokens]) -> Iterator[ASGIClient]:
    """schemathesis's in-process client on the app over the store copy (it runs the app's lifespan)."""
    settings = WebSettings(store=str(fuzz_store[0]), layers_dir=LAYERS_DIR, max_upload_bytes=256 * 1024)
    with asgi.get_client(create_app(settings)) as client:
        yield client


# The document is the app's own; building it needs no store (nothing opens before the lifespan).
schema = schemathesis.openapi.from_dict(create_app(WebSettings(layers_dir=LAYERS_DIR)).openapi(), config=CONFIG)

# Random path parameters name no layer and no feature, so nearly every case would stop at a 404. Two cases in
# three get a real layer of the demo and, every other one, a real id in it. The choice is a pure function of the
# generated values (hypothesis replays a case and must get the same one).
# Scenario routes get the scenario the fuzz store holds (again two cases in three).
SCENARIO = "模糊测试方案"
REAL_IDS = {"projects": "GM-2024-001", "culture_facilities": "CF-0001", "villages": None, "population": None}


@schema.hook
def map_path_parameters(context: HookContext, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if not path_parameters:
        return path_parameters
    turn = zlib.crc32(repr(sorted(path_parameters.items(), key=str)).encode())
    if turn % 3 == 0:
        return path_parameters
    layer = list(REAL_IDS)[turn % len(REAL_IDS)]
    mapped = dict(path_parameters)
    for name in ("layer_name", "collection_id"):
        if name in mapped:
            mapped[name] = layer
    if turn % 2 and "feature_id" in mapped and REAL_IDS[layer]:
        mapped["feature_id"] = REAL_IDS[layer]
    if "scenario" in mapped:
        mapped["scenario"] = SCENARIO
    if turn % 2 and "project_id" in mapped:
        mapped["project_id"] = REAL_IDS["projects"]
    return mapped


@schema.parametrize()
def test_no_server_error_and_refused_writes_change_nothing(
    case: Case, fuzz_store: tuple[Path, Tokens], fuzz_client: ASGIClient
) -> None:
    path, tokens = fuzz_store
    callers = {"anonymous": {}, **{role: bearer(getattr(tokens, role)) for role in ("staff", "planner", "admin")}}
    for role, headers in callers.items():
        before = _sha256(path) if case.method.upper() in WRITES else None
        response = case.call(session=fuzz_client, app=fuzz_client.app, headers=headers)
        where = f"{case.method} {case.formatted_path} as {role}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)
        if before is not None and 400 <= response.status_code < 500:
            assert _sha256(path) == before, f"the refused {where} ({response.status_code}) changed the store"
