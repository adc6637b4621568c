"""The signed, non-DRF endpoints of the devices app in the OpenAPI document.

drf-spectacular describes DRF views only; this postprocessing hook adds POST /api/v1/telemetry
and GET /api/v1/collector/config. The telemetry request body is the official JSON Schema
(protocol/telemetry-v1.schema.json) translated to OpenAPI 3.0 terms (nullable, single-value
enums); tests/devices/test_openapi.py translates it back and checks that nothing else differs.
"""

from __future__ import annotations

import copy
from typing import Any

from devices import wire

PREFIX = "Telemetry"
RANGES_DESCRIPTION = (
    "Normalised address ranges to sweep, each a CIDR network (192.0.2.0/24), a first-last range"
    " (192.0.2.10-192.0.2.50) or one address (192.0.2.99), at most 65,536 addresses each"
    " (protocol/telemetry-v1.md, 'Address ranges'). The portal never serves a range the"
    " collector refuses; a collector skips one it cannot apply, with a warning, and applies the"
    " rest."
)
REORDER_THRESHOLD_HELP = (
    "The customer's reorder threshold in percent (its reorder policy, else the default 15). A"
    " collector uploads at once when a supply's level / max_capacity x 100 falls to or below"
    " it, or a printer raises a new critical alert. Added in a compatible change: older"
    " collectors ignore it; a collector without it uploads at once for critical alerts only."
)
REORDER_THRESHOLDS_HELP = (
    "Device serial -> threshold percent, for devices at this collector's site whose reorder"
    " policy overrides the customer's (added with reorder_threshold_percent)."
)
_SECURITY_HEADERS = [
    ("X-Inkmeter-Key", "The credential's key id."),
    ("X-Inkmeter-Timestamp", "RFC 3339 UTC time of signing; at most 300 s off."),
    (
        "X-Inkmeter-Signature",
        "v1=<hex HMAC-SHA256(secret, 'v1\\nMETHOD\\nPATH\\nTIMESTAMP\\nhex(SHA256(body)))>",
    ),
]


def component_name(definition: str) -> str:
    return PREFIX + definition[:1].upper() + definition[1:]


def to_openapi(node: Any) -> Any:
    """JSON Schema 2020-12 → OpenAPI 3.0 schema object."""
    if isinstance(node, list):
        return [to_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "title"):
            continue
        if key == "$ref":
            out["$ref"] = "#/components/schemas/" + component_name(value.rsplit("/", 1)[1])
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0]
            if "null" in value:
                out["nullable"] = True
        else:
            out[key] = to_openapi(value)
    return out


def telemetry_components() -> dict[str, Any]:
    schema = wire.json_schema()
    components = {component_name(name): to_openapi(d) for name, d in schema["$defs"].items()}
    components[PREFIX + "Batch"] = to_openapi(schema)
    return components


def _signed_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in _SECURITY_HEADERS
    ]


ERROR = {"$ref": "#/components/schemas/TelemetryError"}


def telemetry_paths(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    result = copy.deepcopy(result)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(telemetry_components())
    schemas["TelemetryError"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object"},
                },
            }
        },
    }
    schemas["TelemetryAnswer"] = {
        "type": "object",
        "required": ["batch_id", "accepted", "duplicates", "rejected"],
        "properties": {
            "batch_id": {"type": "string", "format": "uuid"},
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "errors": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }
    error = {"content": {"application/json": {"schema": ERROR}}}
    # Signature failures are limited per client IP (TELEMETRY_AUTH_FAILURE_RATE_LIMIT).
    rate_limited = {"description": "Too many failed signatures from this address.", **error}
    paths = result.setdefault("paths", {})
    paths["/api/v1/telemetry"] = {
        "post": {
            "operationId": "telemetry_ingest",
            "summary": "Upload a telemetry batch (protocol/telemetry-v1.md)",
            "tags": ["telemetry"],
            "security": [],
            "parameters": [
                *_signed_parameters(),
                {
                    "name": "Content-Encoding",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": ["gzip", "identity"]},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/TelemetryBatch"}}
                },
            },
            "responses": {
                "202": {
                    "description": "Committed; bad snapshots are listed in `rejected`.",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/TelemetryAnswer"}
                        }
                    },
                },
                "400": {"description": "Not a valid batch or encoding.", **error},
                "401": {"description": "Key, signature or timestamp not accepted.", **error},
                "413": {"description": "Too large, compressed or decompressed.", **error},
                "415": {"description": "Unsupported Content-Encoding.", **error},
                "429": rate_limited,
            },
        }
    }
    paths["/api/v1/collector/config"] = {
        "get": {
            "operationId": "collector_config",
            "summary": "A collector's configuration (signed like telemetry, empty body)",
            "tags": ["telemetry"],
            "security": [],
            "parameters": _signed_parameters(),
            "responses": {
                "200": {
                    "description": "The configuration.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": [
                                    "config_version",
                                    "ranges",
                                    "communities",
                                    "poll_interval_minutes",
                                    "upload_interval_minutes",
                                    "reorder_threshold_percent",
                                    "reorder_thresholds",
                                ],
                                "properties": {
                                    "config_version": {"type": "integer"},
                                    "ranges": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "description": RANGES_DESCRIPTION,
                                    },
                                    "communities": {"type": "array", "items": {"type": "string"}},
                                    "poll_interval_minutes": {"type": "integer", "minimum": 15},
                                    "upload_interval_minutes": {"type": "integer"},
                                    "reorder_threshold_percent": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "maximum": 100,
                                        "description": REORDER_THRESHOLD_HELP,
                                    },
                                    "reorder_thresholds": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "maximum": 100,
                                        },
                                        "description": REORDER_THRESHOLDS_HELP,
                                    },
                                },
                            }
                        }
                    },
                },
                "401": {"description": "Key, signature or timestamp not accepted.", **error},
                "403": {"description": "Not a collector credential.", **error},
                "429": rate_limited,
            },
        }
    }
    return result
