"""HTTP reads of the values documents: /api/v1/moral-graph, /api/v1/cases, /api/v1/cases/{id}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forum.protocol import ids
from forum.responses import JSON, error
from forum.values.engine import ValuesEngine


def _engine(request: Request) -> ValuesEngine | None:
    return getattr(request.app.state, "values", None)


async def moral_graph(request: Request) -> Response:
    if unknown := set(request.query_params.keys()) - {"context"}:
        return error("invalid", f"unknown query parameter {sorted(unknown)[0][:40]!r}")
    engine = _engine(request)
    doc = engine.moral_graph if engine else None
    if doc is None:
        return error("not-found", "the moral graph is not computed yet")
    context = request.query_params.get("context")
    if context is not None:
        doc = {**doc, "contexts": [c for c in doc["contexts"] if c["context"] == context]}
    return JSON(doc)


async def cases(request: Request) -> Response:
    if request.query_params:
        return error("invalid", f"unknown query parameter {sorted(request.query_params.keys())[0][:40]!r}")
    engine = _engine(request)
    if engine is None or engine.cases is None:
        return error("not-found", "the cases document is not computed yet")
    return JSON(engine.cases)


async def case(request: Request) -> Response:
    case_id = request.path_params["case"]
    if not ids.EVENT_ID.fullmatch(case_id):
        return error("invalid", "a case id is the event id of its flag (64 lowercase hex characters)")
    engine = _engine(request)
    found = engine.case(case_id) if engine else None
    if found is None or engine is None or engine.cases is None:
        return error("not-found", f"no case {case_id[:16]}... (not a flag, or not processed yet)")
    return JSON({"as_of_seq": engine.cases["as_of_seq"], "rules": engine.cases["rules"], "case": found})


routes = [
    Route("/api/v1/moral-graph", moral_graph, methods=["GET"]),
    Route("/api/v1/cases", cases, methods=["GET"]),
    Route("/api/v1/cases/{case}", case, methods=["GET"]),
]
