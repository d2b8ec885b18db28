"""The OpenAPI description of GET/POST /api/ask, added to the named-query library's document (/api/openapi.json)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_Q = {
    "name": "q",
    "in": "query",
    "required": True,
    "description": "The question, in Chinese or English (at most 500 characters), e.g. 哪个科室负责土地管理？",
    "schema": {"type": "string", "minLength": 1, "maxLength": 500},
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


_RESPONSES = {
    "200": {
        "description": "The answer (understood: true) or what was recognised and questions to ask instead",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AskAnswer"}}},
    },
    "400": _problem("No question, an empty one, one given twice or one over 500 characters."),
    "415": _problem("A POST body that is not a URL-encoded form."),
    "503": _problem("The named query reached its time limit, or the service is not ready."),
}
ASK_PATHS: dict[str, Any] = {
    "/api/ask": {
        "get": {
            "operationId": "ask",
            "summary": "A question in words (Chinese or English), answered from the named queries",
            "description": (
                "Maps the question to one named query and its parameters (never to SPARQL built from the "
                "question), runs it, and answers in sentences in the question's language with the SPARQL that "
                "ran, its results (SPARQL 1.1 JSON, unchanged) and each row's basis (source quotes, or "
                "'inferred' with an /api/explain link). Unclear or out-of-scope questions get "
                "understood: false, what was recognised and up to three suggested questions."
            ),
            "tags": ["ask"],
            "parameters": [_Q],
            "responses": _RESPONSES,
        },
        "post": {
            "operationId": "ask_form",
            "summary": "The same, with the question in a form field q",
            "tags": ["ask"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["q"],
                            "properties": {"q": {"type": "string", "minLength": 1, "maxLength": 500}},
                        }
                    }
                },
            },
            "responses": _RESPONSES,
        },
    }
}
ASK_SCHEMAS: dict[str, Any] = {
    "AskAnswer": {
        "type": "object",
        "required": ["question", "language", "understood", "recognised"],
        "properties": {
            "question": {"type": "string"},
            "language": {"enum": ["zh", "en"]},
            "understood": {"type": "boolean"},
            "query": {"type": "string"},
            "parameters": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "interpretation": {"type": "string"},
            "sparql": {"type": "string"},
            "bindings": {"type": "object", "additionalProperties": {"type": "string"}},
            "sparql_standalone": {"type": "string"},
            "answer": {"type": "array", "items": {"type": "string"}},
            "results": {"$ref": "#/components/schemas/SparqlResults"},
            "assumptions": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "basis": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "kind": {"enum": ["asserted", "inferred", "assumption", "computed"]},
                        "quotes": {"type": "array", "items": {"type": "string"}},
                        "claims": {"type": "array", "items": {"type": "string"}},
                        "explain": {"type": ["string", "null"]},
                        "assumption": {"type": "string"},
                    },
                },
            },
            "recognised": {"type": "object"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "detail": {"type": "object"},
            "suggestions": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
        },
    }
}


def with_ask(document: dict[str, Any]) -> dict[str, Any]:
    """The library's OpenAPI document with /api/ask and its answer schema added (the document is changed)."""
    document["paths"].update(ASK_PATHS)
    document["components"]["schemas"].update(ASK_SCHEMAS)
    return document
