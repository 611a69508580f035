"""Consumers read only fields their producers declare.

A handler of another service's event (`@consumes(source, type)`, or a projection's
`@handles("source.Type")`) that reads `event.data["x"]` or `.get("x")` for a field
the producer's schema does not declare would silently see nothing. This scans the
handlers themselves (not helpers they call): a cheap net, not a proof.
"""

import ast
import pathlib

from shared.events import registered_type
from tests.kernel.test_topology import consumers_in_code

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _handled_keys(fn: ast.FunctionDef) -> list[tuple[str, str]]:
    keys = []
    for deco in fn.decorator_list:
        if not isinstance(deco, ast.Call):
            continue
        name = getattr(deco.func, "id", getattr(deco.func, "attr", ""))
        args = [a.value for a in deco.args if isinstance(a, ast.Constant)]
        if name == "consumes" and len(args) == 2:
            keys.append((args[0], args[1]))
        elif name == "handles":
            keys += [tuple(a.split(".", 1)) for a in args if "." in a]
    return keys


def _fields_read(fn: ast.FunctionDef) -> set[str]:
    fields = set()
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "data"
            and isinstance(node.slice, ast.Constant)
        ):
            fields.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "data"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            fields.add(node.args[0].value)
    return fields


def test_consumers_read_only_declared_fields():
    consumers_in_code()  # registers every service's event types
    problems = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for source, event in _handled_keys(fn):
                known = registered_type(event)
                if known is None:
                    problems.append(f"{path.name}:{fn.name}: {source}.{event} is not declared")
                    continue
                undeclared = _fields_read(fn) - set(known.schema.fields)
                if undeclared:
                    problems.append(
                        f"{path.name}:{fn.name}: {source}.{event} has no {sorted(undeclared)}"
                    )
    assert problems == []
