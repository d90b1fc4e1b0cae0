"""``/api``: the OpenAPI document of the forum's HTTP API rendered for people, and the
WebSocket protocol's frames, served from this forum alone (no external host)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds.pages.base import base_url, render
from forum.openapi import openapi_document

METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def _schema_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    t = schema.get("type", "")
    if isinstance(t, list):
        t = " or ".join(str(x) for x in t)
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum") if k in schema]
    return f"{t}{' (' + ', '.join(bounds) + ')' if bounds else ''}"


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ops = []
    for path, item in doc.get("paths", {}).items():
        for method in METHOD_ORDER:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            ops.append(
                {
                    "anchor": f"{method}-{path}",
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "params": [
                        {"name": p.get("name"), "where": p.get("in"), "required": p.get("required", False), "type": _schema_text(p.get("schema")), "description": p.get("description", "")}
                        for p in op.get("parameters", [])
                    ],
                    "body": ", ".join(sorted((op.get("requestBody") or {}).get("content", {}))),
                    "responses": [
                        {"status": status, "description": r.get("description", ""), "types": ", ".join(sorted(r.get("content", {})))}
                        for status, r in sorted(op.get("responses", {}).items())
                    ],
                }
            )
    return ops


async def api_page(request: Request) -> Response:
    """Rendered once per base URL: the document is fixed for a running forum."""
    cache: dict[str, bytes] | None = getattr(request.app.state, "feeds_api_page", None)
    if cache is None:
        cache = request.app.state.feeds_api_page = {}
    key = base_url(request)
    body = cache.get(key)
    if body is None:
        body = cache[key] = bytes(_render(request).body)
    if len(cache) > 16:  # base URLs come from requests (Host) unless FORUM_PUBLIC_URL is set
        cache.pop(next(iter(cache)))
    return Response(body, media_type="text/html; charset=utf-8")


def _render(request: Request) -> Response:
    doc = openapi_document()
    schemas = {name: json.dumps(s, indent=2, sort_keys=True) for name, s in doc.get("components", {}).get("schemas", {}).items()}
    ws = base_url(request).replace("https://", "wss://").replace("http://", "ws://") + "/ws"
    return render(
        request,
        "api.html",
        {"nav": "api", "info": doc.get("info", {}), "version": doc.get("openapi"), "ops": operations(doc), "schemas": schemas, "ws_url": ws, "base": base_url(request)},
    )


def routes() -> list[BaseRoute]:
    return [Route("/api", api_page, methods=["GET"])]
