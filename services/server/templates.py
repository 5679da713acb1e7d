"""Input and output templates of a capability, as FINALES2's ``/capabilities/templates/``.

Each leaf of a schema becomes a string such as ``"required, float"``.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"number": "float", "integer": "int", "string": "str", "boolean": "bool", "null": "None"}


def _type_name(kind: str) -> str:
    return _TYPES.get(kind, kind)


def _resolve(node: dict, root: dict) -> dict:
    seen = 0
    while "$ref" in node and seen < 32:
        ref = node["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
        seen += 1
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve(node["allOf"][0], root)
    return node


def _template(node: dict, root: dict, required: bool, depth: int = 0) -> Any:
    node = _resolve(node, root)
    flag = "required" if required else "optional"
    if depth > 20:
        return f"{flag}, object"
    if "anyOf" in node or "oneOf" in node:
        options = [_resolve(o, root) for o in node.get("anyOf", node.get("oneOf", []))]
        real = [o for o in options if o.get("type") != "null"]
        if len(real) < len(options):
            flag = "optional"
        if len(real) == 1:
            return _template(real[0], root, flag == "required", depth + 1)
        names = " or ".join(_TYPES.get(o.get("type", ""), o.get("type", "object")) for o in real)
        return f"{flag}, {names}"
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        req = set(node.get("required", []))
        return {k: _template(v, root, k in req, depth + 1) for k, v in node.get("properties", {}).items()}
    if kind == "array":
        return [_template(node.get("items", {}), root, True, depth + 1)]
    if "enum" in node:
        return f"{flag}, one of {node['enum']}"
    if isinstance(kind, list):
        return f"{flag}, {' or '.join(_type_name(k) for k in kind)}"
    return f"{flag}, {_type_name(kind) if kind else 'any'}"


def template(schema: dict) -> Any:
    return _template(schema, schema, True)
