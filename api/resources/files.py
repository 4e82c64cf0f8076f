"""A table served as a file to save (the register, the tasks' ledger): one answer's shape."""

from __future__ import annotations

from flask import Response

from api.sheets import TABLE_TYPES


def table_doc(description: str) -> dict:
    """The OpenAPI `responses` of a route answering such a file."""
    return {"200": {"description": description, "content": {ct: {} for ct in TABLE_TYPES.values()}}}


def table_file(data: bytes, fmt: str, name: str) -> Response:
    """`data` (`sheets.write_table`'s, `fmt` one of TABLE_TYPES) to be saved as `name`: never
    kept by a cache on the way (it holds residents' or tasks' records), CSV said to be UTF-8."""
    response = Response(data, mimetype=TABLE_TYPES[fmt])
    if fmt == "csv":
        response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
