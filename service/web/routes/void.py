"""GET /.well-known/void: the VoID description of the dataset (Turtle by default, negotiated)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from service.describe import void_description
from service.sparql.protocol import decode_form, parse_control
from service.web.answer import description_response

bp = Blueprint("void", __name__)


@bp.route("/.well-known/void", methods=["GET"])
def void() -> Response:
    """The dataset's VoID description: statistics, partitions, one subset per named graph."""
    control = parse_control(decode_form(request.query_string, "URL query string"))
    return description_response("void", void_description, control.format)
