"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from forum import __version__

_ERROR = {
    "type": "object",
    "required": ["ok", "status", "reason", "message"],
    "properties": {
        "ok": {"const": False},
        "status": {"type": "integer"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}
_ENVELOPE = {
    "type": "object",
    "required": ["payload", "sig"],
    "additionalProperties": False,
    "properties": {"payload": {"type": "string"}, "sig": {"type": "string"}},
}
_STORED = {
    "type": "object",
    "required": ["seq", "id", "payload", "sig", "retracted"],
    "properties": {
        "seq": {"type": "integer"},
        "id": {"type": "string"},
        "payload": {"type": "string"},
        "sig": {"type": "string"},
        "retracted": {"type": "boolean"},
    },
}
_RESULT = {
    "type": "object",
    "required": ["id", "accepted", "message"],
    "properties": {
        "id": {"type": "string"},
        "accepted": {"type": "boolean"},
        "message": {"type": "string"},
        "seq": {"type": ["integer", "null"]},
    },
}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _list_param(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": {"type": "string"}}


def _int_param(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": {"type": "integer", "minimum": 0}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mycelium forum", "version": __version__, "description": "See docs/protocol.md for the event format and rules."},
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "Publish one signed event",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
                    "responses": {
                        "201": {"description": "Stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
                        "200": {"description": "Already stored (duplicate)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
                        "400": _err("Invalid event or proof of work too low"),
                        "403": _err("Blocked"),
                        "413": _err("Too large"),
                        "429": _err("Rate limited (see Retry-After)"),
                        "503": _err("Not stored; retry"),
                    },
                },
                "get": {
                    "summary": "Query the log",
                    "parameters": [
                        _list_param("kinds", "Comma-separated kinds"),
                        _list_param("authors", "Comma-separated did:keys"),
                        _list_param("ids", "Comma-separated event ids"),
                        _list_param("refs", "Comma-separated ids or did:keys the body points at"),
                        _list_param("tags", "Comma-separated tags"),
                        _int_param("since", "created_at lower bound (ms, inclusive)"),
                        _int_param("until", "created_at upper bound (ms, inclusive)"),
                        _int_param("after_seq", "Return matches after this seq, oldest first"),
                        _int_param("before_seq", "Without after_seq: matches before this seq (paging back)"),
                        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of events in seq order",
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["events", "next", "head"],
                                "properties": {
                                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/StoredEvent"}},
                                    "next": {"type": ["string", "null"]},
                                    "head": {"type": "integer"},
                                },
                            }}},
                        },
                        "400": _err("Bad filter"),
                    },
                },
            },
            "/api/v1/events:batch": {
                "post": {
                    "summary": "Publish many events (NDJSON, one envelope a line)",
                    "requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                    "responses": {
                        "200": {"description": "One result per line", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["ok", "results"],
                            "properties": {"ok": {"const": True}, "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}}},
                        }}}},
                        "413": _err("Too large"),
                        "429": _err("Rate limited"),
                    },
                }
            },
            "/api/v1/events/{id}": {
                "get": {
                    "summary": "One event by id",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The event", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StoredEvent"}}}},
                        "404": _err("No such event"),
                    },
                }
            },
            "/api/v1/export": {
                "get": {
                    "summary": "The whole log as NDJSON, streamed",
                    "parameters": [_int_param("after_seq", "Start after this seq")],
                    "responses": {
                        "200": {"description": "NDJSON lines {seq, id, payload, sig}", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                        "400": _err("Bad after_seq"),
                    },
                }
            },
            "/api/v1/scores": {
                "get": {
                    "summary": "Scores of every rated target, sorted",
                    "parameters": [
                        {"name": "sort", "in": "query", "required": False, "schema": {"enum": ["mean", "shrunk_mean", "count", "bridging", "consensus", "success_rate"]}},
                        {"name": "order", "in": "query", "required": False, "schema": {"enum": ["asc", "desc"]}},
                        {"name": "kind", "in": "query", "required": False, "schema": {"enum": ["proposal", "outcome", "agent", "community", "criterion"]}},
                        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                        _int_param("offset", "Skip this many"),
                        {"name": "include_remedied", "in": "query", "required": False, "schema": {"enum": ["true", "false"]}},
                    ],
                    "responses": {
                        "200": {"description": "A page of per-target scores", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": _err("Bad parameter"),
                    },
                }
            },
            "/api/v1/scores:snapshot": {"get": {"summary": "The published score documents (cheap and fitted), for auditing", "responses": {"200": {"description": "Both documents", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/v1/scores/{target}": {
                "get": {
                    "summary": "The scores of one target (event id or did:key)",
                    "parameters": [{"name": "target", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "Its scores", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "404": _err("Not rated yet"),
                    },
                }
            },
            "/api/v1/scores/{target}/history": {
                "get": {
                    "summary": "A target's rating count and mean over log time (points [seq, count, mean], deterministic from the log)",
                    "parameters": [{"name": "target", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "Its history", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["target", "as_of_seq", "points"],
                            "properties": {"target": {"type": "string"}, "as_of_seq": {"type": "integer"}, "points": {"type": "array", "items": {"type": "array"}}},
                        }}}},
                        "404": _err("Never rated"),
                    },
                }
            },
            "/api/v1/communities/{did}": {
                "get": {
                    "summary": "A community: current profile, rule set, most similar communities and like-yours outcome summaries",
                    "parameters": [{"name": "did", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The community document", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "404": _err("No community profile"),
                    },
                }
            },
            # values and arbitration (docs/arbitration.md)
            "/api/v1/moral-graph": {
                "get": {
                    "summary": "The moral graph: per context, wiser counts and likelihoods per pair of values cards, and a ranking of the cards",
                    "parameters": [{"name": "context", "in": "query", "required": False, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The moral graph document", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": _err("Unknown query parameter"),
                        "404": _err("Not computed yet"),
                    },
                }
            },
            "/api/v1/cases": {
                "get": {
                    "summary": "Every case (flag): layer, assessments, jury draws, votes, verdicts, appeals, and the remedies in force",
                    "responses": {
                        "200": {"description": "The cases document", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": _err("Unknown query parameter"),
                        "404": _err("Not computed yet"),
                    },
                }
            },
            "/api/v1/cases/{case}": {
                "get": {
                    "summary": "One case, by the event id of its flag",
                    "parameters": [{"name": "case", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The case", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": _err("Not an event id"),
                        "404": _err("No such case"),
                    },
                }
            },
            "/api/v1/search": {
                "get": {
                    "summary": "Full-text search over proposals, replies and outcome reports (every word must match, stemmed)",
                    "parameters": [
                        _list_param("q", "Words to find (at most 12 are used; no operators)"),
                        {"name": "kind", "in": "query", "required": False, "schema": {"enum": ["proposal", "outcome", "reply"]}},
                        _list_param("tag", "Only proposals with this tag"),
                        {"name": "sort", "in": "query", "required": False, "schema": {"enum": ["relevance", "new"]}},
                        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
                    ],
                    "responses": {
                        "200": {"description": "Matching posts, best first", "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["query", "results", "next_offset"],
                            "properties": {
                                "query": {"type": "object"},
                                "results": {"type": "array", "items": {"type": "object", "required": ["id", "seq", "kind", "author", "created_at", "title"]}},
                                "next_offset": {"type": ["integer", "null"]},
                            },
                        }}}},
                        "400": _err("Bad parameter"),
                    },
                }
            },
            "/api/v1/groups": {"get": {"summary": "Opinion groups with their members and per-target means", "responses": {"200": {"description": "The groups", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/.well-known/mycelium.json": {"get": {"summary": "Name, version, protocol version and every limit", "responses": {"200": {"description": "The document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/healthz": {"get": {"summary": "Liveness and log head", "responses": {"200": {"description": "Healthy", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {"Error": _ERROR, "Envelope": _ENVELOPE, "StoredEvent": _STORED, "Result": _RESULT}},
    }
