"""Edits of an operator's plan file that keep everything else of it: comments, key order,
quoting, blank lines (ruamel.yaml's round trip; PyYAML would drop every comment).

The plan is the operator's document: `omwizard remove-node` takes one node out of it (and a
face can add one) without rewriting the rest.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent


class PlanEditError(ValueError):
    """The plan text cannot be edited as asked (not YAML, no such node, ...)."""


def _load(text: str) -> tuple[YAML, Any]:
    """The round-trip document, and a dumper that indents the way this file does."""
    try:
        _guess, indent, dash = load_yaml_guess_indent(text)
        y = YAML()  # round trip; the guess above loses quotes, so load again keeping them
        y.preserve_quotes = True
        y.width = 4096
        data = y.load(text)
    except YAMLError as exc:
        raise PlanEditError(f"the plan is not YAML: {exc}") from exc
    mapping = 2 if indent == dash + 2 or indent is None else indent
    y.indent(mapping=mapping, sequence=indent or 2, offset=dash or 0)
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise PlanEditError("the plan has no nodes: list")
    return y, data


def _dump(y: YAML, data: Any) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def remove_node_text(text: str, name: str) -> str:
    """The plan text without the node called `name`; every other line as it was."""
    y, data = _load(text)
    nodes = data["nodes"]
    index = next((i for i, n in enumerate(nodes) if isinstance(n, dict) and n.get("name") == name),
                 None)
    if index is None:
        known = ", ".join(str(n.get("name")) for n in nodes if isinstance(n, dict))
        raise PlanEditError(f"no node {name!r} in the plan (nodes: {known})")
    del nodes[index]
    return _dump(y, data)


def add_node_text(text: str, node: dict[str, Any]) -> str:
    """The plan text with one more node at the end of nodes: (a mapping like the others)."""
    y, data = _load(text)
    if any(isinstance(n, dict) and n.get("name") == node.get("name") for n in data["nodes"]):
        raise PlanEditError(f"a node {node.get('name')!r} is already in the plan")
    data["nodes"].append(node)
    return _dump(y, data)
