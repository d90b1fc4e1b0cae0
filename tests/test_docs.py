"""The documentation covers the code: a setting, an endpoint, a reason, a frame
type, a kind or a body field that is added without being documented fails here."""

from __future__ import annotations

import functools
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from forum import api, search
from forum.api import well_known_document
from forum.openapi import openapi_document
from forum.protocol import errors, wire
from forum.protocol.events import BODY_MODELS, KINDS, Metric, Period
from forum.protocol.filters import FIELDS
from forum.scores import api as scores_api
from forum.settings import Settings
from forum.values import api as values_api

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROTOCOL = (DOCS / "protocol.md").read_text("utf-8")
API = (DOCS / "api.md").read_text("utf-8")
SETTINGS = (DOCS / "settings.md").read_text("utf-8")
VECTORS = json.loads((ROOT / "tests" / "data" / "protocol-vectors.json").read_text("utf-8"))["vectors"]


def code(text: str) -> str:
    return f"`{text}`"


# --------------------------------------------------------------------------- settings


def env_name(field: str) -> str:
    return f"FORUM_{field.upper()}"


def rendered_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return code(f"./{value}")
    if isinstance(value, float):
        return code(f"{value:g}")
    return code(str(value))


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(field: str) -> None:
    rows = [ln for ln in SETTINGS.splitlines() if ln.startswith(f"| {code(env_name(field))} |")]
    assert rows, f"{env_name(field)} is not in the table of docs/settings.md"
    assert len(rows) == 1, f"{env_name(field)} has {len(rows)} rows in docs/settings.md"
    default = rendered_default(Settings.model_fields[field].default)
    assert default in rows[0], f"docs/settings.md shows another default for {env_name(field)} (expected {default})"


def test_settings_doc_names_no_setting_that_does_not_exist() -> None:
    known = {env_name(f) for f in Settings.model_fields}
    documented = set(re.findall(r"\bFORUM_[A-Z_]+[A-Z]\b", SETTINGS))
    assert documented <= known, f"docs/settings.md names unknown settings: {sorted(documented - known)}"


@pytest.mark.parametrize("flag", ["--host", "--port", "--data-dir", "--database-url"])
def test_serve_flags_are_documented(flag: str) -> None:
    assert code(flag) in SETTINGS


# --------------------------------------------------------------------------- endpoints


def route_methods() -> dict[str, set[str]]:
    """Every HTTP route of the JSON API (forum.api, forum.scores.api, forum.values.api and forum.search)."""
    out: dict[str, set[str]] = {}
    for r in [*api.routes, *scores_api.routes, *values_api.routes, *search.routes]:
        out.setdefault(r.path, set()).update(m.lower() for m in (r.methods or ()) if m != "HEAD")
    return out


def test_openapi_paths_are_exactly_the_routes() -> None:
    routes = route_methods()
    paths = openapi_document()["paths"]
    assert set(paths) == set(routes), (
        f"only in openapi: {sorted(set(paths) - set(routes))}; only in routes: {sorted(set(routes) - set(paths))}"
    )
    for path, methods in routes.items():
        assert set(paths[path]) == methods, f"{path}: openapi has {sorted(paths[path])}, routes have {sorted(methods)}"


@functools.cache
def forum_app_routes() -> dict[str, set[str]]:
    """Every route the forum core adds to the app (the public pages of feeds/ are in docs/feeds.md)."""
    from forum.app import create_app

    out: dict[str, set[str]] = {}
    for r in create_app(Settings.model_validate({})).routes:
        module = getattr(getattr(r, "endpoint", None), "__module__", "") or ""
        if module.startswith("forum."):
            methods = getattr(r, "methods", None) or {"GET"}  # a WebSocket route is a GET upgrade
            out.setdefault(r.path, set()).update(m.lower() for m in methods if m != "HEAD")  # type: ignore[attr-defined]
    return out


ALL_PATHS = sorted(set(route_methods()) | set(openapi_document()["paths"]) | set(forum_app_routes()))


@pytest.mark.parametrize("path", ALL_PATHS)
def test_every_endpoint_is_documented(path: str) -> None:
    assert code(path) in API, f"{path} is not documented in docs/api.md"
    if path == "/ws":
        return  # the WebSocket protocol has its own document
    for method in route_methods().get(path, set()) | forum_app_routes().get(path, set()):
        assert re.search(rf"^#+ {method.upper()} {re.escape(path)}$", API, re.M), (
            f"docs/api.md has no section for {method.upper()} {path}"
        )


def test_the_core_routes_are_all_in_the_app() -> None:
    assert set(route_methods()) <= set(forum_app_routes())


def test_every_query_parameter_and_limit_is_documented() -> None:
    for name in (*FIELDS, "before_seq"):
        assert f"| {code(name)} |" in API, f"query parameter {name} is not in docs/api.md"
    for key in well_known_document(Settings.model_validate({}), 0)["limits"]:
        assert code(key) in API, f"well-known limit {key} is not in docs/api.md"


# --------------------------------------------------------------------------- protocol


@pytest.mark.parametrize("reason", errors.REASONS)
def test_every_reason_is_in_the_protocol_reasons_table(reason: str) -> None:
    assert f"| {code(reason)} |" in PROTOCOL, f"reason {reason} is not in the reasons table of docs/protocol.md"


def wire_message_types() -> set[str]:
    found = set(re.findall(r'"([A-Z]{2,})"', inspect.getsource(wire)))
    assert {"PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "OK", "EVENT", "LIVE", "CLOSED", "NOTICE"} <= found
    return found


@pytest.mark.parametrize("frame", sorted(wire_message_types()))
def test_every_wire_message_type_is_documented(frame: str) -> None:
    assert f'["{frame}"' in PROTOCOL, f"no {frame} frame in docs/protocol.md"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_and_body_field_is_documented(kind: str) -> None:
    section = re.search(rf"### 6\.\d+ `{kind}`.*?(?=\n### |\n## )", PROTOCOL, re.S)
    assert section, f"docs/protocol.md has no section for kind {kind}"
    models: list[type[BaseModel]] = [BODY_MODELS[kind]]
    if kind == "outcome":
        models += [Period, Metric]
    for model in models:
        for field in model.model_fields:
            assert code(field) in section.group(0), f"{kind} body field {field} is not documented"


@pytest.mark.parametrize("field", FIELDS)
def test_every_filter_field_is_documented(field: str) -> None:
    assert f"| {code(field)} |" in PROTOCOL


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"][:8] for v in VECTORS])
def test_worked_examples_match_the_test_vectors(vec: dict[str, str]) -> None:
    for key in ("public_key_hex", "did", "payload", "sig", "id"):  # the seed is shown as "01 repeated 32 times"
        assert vec[key] in PROTOCOL, f"docs/protocol.md does not show the vector's {key}"
