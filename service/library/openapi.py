"""The OpenAPI 3.1 document of the named-query REST API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service import __version__
from service.library.queries import MAX_VALUES, Library, NamedQuery, Parameter
from service.library.vocabulary import Vocabulary
from service.sparql.lexer import service_targets

# --- OpenAPI 3.1 -------------------------------------------------------------------------------------------

_RESULT_MEDIA_TYPES = {
    "select": (
        "application/sparql-results+json",
        "application/sparql-results+xml",
        "text/csv",
        "text/tab-separated-values",
    ),
    "ask": ("application/sparql-results+json", "application/sparql-results+xml"),
    "construct": (
        "text/turtle",
        "application/n-triples",
        "application/ld+json",
        "application/rdf+xml",
        "application/trig",
        "application/n-quads",
    ),
}
_FORMAT_KEYS = {
    "select": ("json", "xml", "csv", "tsv"),
    "ask": ("json", "xml"),
    "construct": ("ttl", "nt", "jsonld", "rdfxml", "trig", "nq"),
}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_TERM_SCHEMA = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"enum": ["uri", "literal", "bnode", "triple"]},
        "value": {},
        "xml:lang": {"type": "string"},
        "datatype": {"type": "string"},
    },
}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


def _text(texts: Mapping[str, str]) -> str:
    return " / ".join(texts[lang] for lang in ("en", "zh") if texts.get(lang))


def _value_schema(param: Parameter, vocabulary: Vocabulary) -> dict[str, Any]:
    if param.type == "integer":
        schema: dict[str, Any] = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    elif param.type == "iri":
        schema = {"type": "string", "format": "iri", "pattern": "^https?://"}
    elif param.type == "string":
        schema = {"type": "string", "maxLength": param.max_length}
    else:
        schema = {"type": "string"}
    allowed = param.allowed_values(vocabulary)
    if param.type == "language" or param.allowed:
        schema["enum"] = allowed
    elif allowed:  # graph-backed: short names are canonical, but IRIs and labels are accepted too
        schema["examples"] = allowed
    return schema


def _parameter_object(param: Parameter, vocabulary: Vocabulary) -> dict[str, Any]:
    schema = _value_schema(param, vocabulary)
    lookup = param.lookup
    help_text = _text(param.description) or param.name
    if lookup is not None:
        help_text += f" — {lookup.help}"
    if param.multiple:
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": MAX_VALUES}
        help_text += " (repeat the parameter for several values)"
    if param.default:
        default = list(param.default) if param.multiple else param.default[0]
        schema["default"] = int(default) if param.type == "integer" else default
    obj: dict[str, Any] = {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": help_text,
        "schema": schema,
    }
    if param.multiple:
        obj.update(style="form", explode=True)
    return obj


_FEDERATED_RESPONSES = {
    "403": _problem_response("The SERVICE endpoint is not on this deployment's allowlist (GUIAN_KG_SERVICE_ALLOW)."),
    "502": _problem_response("The SERVICE endpoint failed or did not answer in time."),
}


def _query_operation(query: NamedQuery) -> dict[str, Any]:
    form = "construct" if query.form == "describe" else query.form
    ok: dict[str, Any] = {}
    for media_type in _RESULT_MEDIA_TYPES[form]:
        if media_type == "application/sparql-results+json":
            ok[media_type] = {"schema": {"$ref": "#/components/schemas/SparqlResults"}}
        else:
            ok[media_type] = {"schema": {"type": "string"}}
    parameters = [_parameter_object(p, query.vocabulary) for p in query.parameters]
    parameters += [
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": "Result format; overrides the Accept header.",
            "schema": {"type": "string", "enum": list(_FORMAT_KEYS[form])},
        },
        {"$ref": "#/components/parameters/infer"},
        {"$ref": "#/components/parameters/timeout"},
    ]
    summary = query.title.get("en", query.name)
    return {
        "operationId": "query_" + query.name.replace("-", "_"),
        "summary": summary,
        "description": f"{query.description['en']}\n\n{query.title['zh']}：{query.description['zh']}",
        "tags": ["named queries"],
        "parameters": parameters,
        "responses": {
            "200": {"description": f"The result ({', '.join(query.variables) or form})", "content": ok},
            "400": _problem_response("A parameter value the query does not accept (the problem names it)."),
            "406": _problem_response("No acceptable result format."),
            "422": _problem_response("The result is over the service's size limit."),
            "503": _problem_response("The query reached its time limit."),
            **(_FEDERATED_RESPONSES if service_targets(query.text) else {}),
        },
    }


def openapi_document(library: Library, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the named-query REST API served at `base_url`."""
    paths: dict[str, Any] = {
        "/api/queries": {
            "get": {
                "operationId": "list_queries",
                "summary": "The named queries, with their parameters",
                "tags": ["named queries"],
                "responses": {
                    "200": {
                        "description": "Every named query",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryList"}}},
                    }
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This OpenAPI document",
                "tags": ["named queries"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    for query in library:
        paths[f"/api/queries/{query.name}"] = {"get": _query_operation(query)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "guian-kg named queries",
            "version": __version__,
            "summary": "The questions analysts and researchers ask of the guian-kg knowledge graph, as a REST API.",
            "description": (
                "Each operation runs one named SPARQL query of the library (`queries/*.rq`). Parameter values are "
                "bound as RDF terms, never pasted into the query text. Results are content-negotiated like /sparql "
                "(Accept or format=); infer=false leaves the inferred graph out; timeout= may lower the time limit."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": {
            "parameters": {
                "infer": {
                    "name": "infer",
                    "in": "query",
                    "required": False,
                    "description": "Include the OWL 2 RL inferences (default: the server's setting).",
                    "schema": {"type": "boolean"},
                },
                "timeout": {
                    "name": "timeout",
                    "in": "query",
                    "required": False,
                    "description": "Time limit in seconds; may only lower the server's.",
                    "schema": {"type": "number", "exclusiveMinimum": 0},
                },
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "code": {"type": "string"},
                        "parameter": {"type": "string"},
                        "allowed": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "SparqlResults": {
                    "type": "object",
                    "required": ["head"],
                    "properties": {
                        "head": {
                            "type": "object",
                            "properties": {"vars": {"type": "array", "items": {"type": "string"}}},
                        },
                        "results": {
                            "type": "object",
                            "required": ["bindings"],
                            "properties": {
                                "bindings": {
                                    "type": "array",
                                    "items": {"type": "object", "additionalProperties": _TERM_SCHEMA},
                                }
                            },
                        },
                        "boolean": {"type": "boolean"},
                    },
                },
                "QueryList": {
                    "type": "object",
                    "required": ["queries"],
                    "properties": {
                        "queries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "title", "description", "parameters", "url"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "title": {"type": "object"},
                                    "description": {"type": "object"},
                                    "form": {"type": "string"},
                                    "variables": {"type": "array", "items": {"type": "string"}},
                                    "ordered": {"type": "boolean"},
                                    "parameters": {"type": "array", "items": {"type": "object"}},
                                    "url": {"type": "string"},
                                },
                            },
                        }
                    },
                },
            },
        },
    }
