"""The portal's OpenAPI document as the fuzzers load it: generated in-process, as plain JSON."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.generators import SchemaGenerator

# Arrays are capped for the fuzzers (not for the endpoints): cases of a few items exercise the
# same code paths, and many more of them then fit the CI budget. Size limits have their own tests.
FUZZ_MAX_ITEMS = 3


def _cap_arrays(node: Any) -> Any:
    if isinstance(node, dict):
        if "maxItems" in node:
            node["maxItems"] = min(node["maxItems"], FUZZ_MAX_ITEMS)
        for value in node.values():
            _cap_arrays(value)
    elif isinstance(node, list):
        for value in node:
            _cap_arrays(value)
    return node


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    # Round-trip through JSON: the generator leaves lazy strings and enum members in place.
    return _cap_arrays(json.loads(json.dumps(document, default=str)))
