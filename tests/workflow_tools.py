"""Read, check and run the shipped UI-format workflows against the node classes.

ComfyUI's frontend stores a node's widget values as a plain list (``widgets_values``) in the
order of the node's widget inputs. If a node's inputs change, a saved workflow silently
shifts its values into the wrong widgets, so :func:`lint_workflow` checks every value against
the input it lands on. :func:`run_workflow` executes a graph headless by calling each node's
``FUNCTION`` in dependency order, the way ComfyUI's executor does (no caching, no UI): only the
output nodes (``OUTPUT_NODE = True``) and what they depend on run; a node whose outputs lead to no
output node is skipped, as ComfyUI skips it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# Nodes that only annotate a graph: they have no Python class.
NOTE_TYPES = {"Note", "MarkdownNote"}


@dataclass
class WidgetSpec:
    name: str
    kind: str  # INT / FLOAT / STRING / BOOLEAN / COMBO / UPLOAD / CONTROL
    options: dict = field(default_factory=dict)
    choices: list | None = None


def _input_items(cls) -> list[tuple[str, Any]]:
    spec = cls.INPUT_TYPES()
    items = []
    for section in ("required", "optional"):
        items += list(spec.get(section, {}).items())
    return items


def widget_specs(cls) -> list[WidgetSpec]:
    """The values the frontend serialises for ``cls``, in order."""
    specs: list[WidgetSpec] = []
    uploads: list[WidgetSpec] = []
    for name, decl in _input_items(cls):
        kind = decl[0]
        options = decl[1] if len(decl) > 1 and isinstance(decl[1], dict) else {}
        if options.get("forceInput"):
            continue
        if isinstance(kind, (list, tuple)):
            specs.append(WidgetSpec(name, "COMBO", options, list(kind)))
        elif kind == "COMBO":
            specs.append(WidgetSpec(name, "COMBO", options, list(options.get("options", []))))
        elif kind in WIDGET_TYPES:
            specs.append(WidgetSpec(name, kind, options))
        else:
            continue
        if kind == "INT" and options.get("control_after_generate"):
            specs.append(WidgetSpec(name + ":control", "CONTROL"))
        if any(k.endswith("_upload") and v for k, v in options.items()):
            uploads.append(WidgetSpec(name + ":upload", "UPLOAD"))
    # The frontend adds upload buttons after the node's other widgets (seen in ComfyUI's
    # frontend: LoadImage serialises ["example.png", "image"]); control_after_generate values
    # follow their INT widget directly.
    return specs + uploads


def link_inputs(cls) -> dict[str, str]:
    """Inputs that take a connection: name -> type."""
    out = {}
    for name, decl in _input_items(cls):
        kind = decl[0]
        options = decl[1] if len(decl) > 1 and isinstance(decl[1], dict) else {}
        if isinstance(kind, str) and (kind not in WIDGET_TYPES or options.get("forceInput")):
            out[name] = kind
    return out


def _check_value(spec: WidgetSpec, value: Any) -> str | None:
    if spec.kind == "COMBO":
        if value not in (spec.choices or []):
            return f"{value!r} is not one of {spec.choices!r}"
    elif spec.kind == "INT":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value!r} is not an INT"
        if "min" in spec.options and value < spec.options["min"] or "max" in spec.options and value > spec.options["max"]:
            return f"{value} outside [{spec.options.get('min')}, {spec.options.get('max')}]"
    elif spec.kind == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{value!r} is not a FLOAT"
        if "min" in spec.options and value < spec.options["min"] or "max" in spec.options and value > spec.options["max"]:
            return f"{value} outside [{spec.options.get('min')}, {spec.options.get('max')}]"
    elif spec.kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"{value!r} is not a BOOLEAN"
    elif spec.kind == "STRING":
        if not isinstance(value, str):
            return f"{value!r} is not a STRING"
    elif spec.kind == "CONTROL":
        if value not in ("fixed", "increment", "decrement", "randomize"):
            return f"{value!r} is not a control-after-generate mode"
    return None


def lint_workflow(workflow: dict, mappings: dict[str, type]) -> list[str]:
    """Every problem found in a UI-format workflow (empty list = fine)."""
    problems: list[str] = []
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    for node in nodes.values():
        ntype = node["type"]
        where = f"node {node['id']} ({ntype})"
        if ntype in NOTE_TYPES:
            continue
        cls = mappings.get(ntype)
        if cls is None:
            problems.append(f"{where}: unknown node id")
            continue
        specs = widget_specs(cls)
        values = node.get("widgets_values", [])
        if len(values) != len(specs):
            problems.append(f"{where}: {len(values)} widget values for {len(specs)} widgets "
                            f"{[s.name for s in specs]}")
            continue
        for spec, value in zip(specs, values):
            error = _check_value(spec, value)
            if error:
                problems.append(f"{where}: widget '{spec.name}': {error}")
        inputs = link_inputs(cls)
        for slot in node.get("inputs", []):
            if slot["name"] not in inputs and slot["name"] not in {s.name for s in specs}:
                problems.append(f"{where}: input slot '{slot['name']}' does not exist")
    for link in workflow.get("links", []):
        link_id, src, src_slot, dst, dst_slot, ltype = link
        if src not in nodes or dst not in nodes:
            problems.append(f"link {link_id}: missing node")
            continue
        src_cls = mappings.get(nodes[src]["type"])
        dst_node = nodes[dst]
        if src_cls is None:
            continue
        if src_slot >= len(src_cls.RETURN_TYPES) or src_cls.RETURN_TYPES[src_slot] != ltype:
            problems.append(f"link {link_id}: source slot {src_slot} of {nodes[src]['type']} is not {ltype}")
        dst_cls = mappings.get(dst_node["type"])
        name = dst_node["inputs"][dst_slot]["name"] if dst_slot < len(dst_node.get("inputs", [])) else None
        if dst_cls is not None and link_inputs(dst_cls).get(name) not in (ltype, "*"):
            problems.append(f"link {link_id}: {dst_node['type']}.{name} does not take {ltype}")
    return problems


def output_node_ids(workflow: dict, mappings: dict[str, type]) -> list[int]:
    """Ids of the nodes ComfyUI starts executing from: those whose class has ``OUTPUT_NODE``."""
    return [n["id"] for n in workflow["nodes"]
            if n["type"] not in NOTE_TYPES and getattr(mappings[n["type"]], "OUTPUT_NODE", False)]


def run_workflow(workflow: dict, mappings: dict[str, type],
                 widget_overrides: dict[tuple[str, str], Any] | None = None) -> dict[int, tuple]:
    """Execute the graph as ComfyUI would; returns each executed node's output tuple by node id.

    Execution starts from the output nodes and pulls in their inputs; nodes that feed no output
    node are not executed (and are absent from the result), like in ComfyUI.
    ``widget_overrides`` maps ``(node type, widget name)`` to a value (e.g. fewer frames).
    """
    overrides = widget_overrides or {}
    nodes = {n["id"]: n for n in workflow["nodes"] if n["type"] not in NOTE_TYPES}
    links = {l[0]: l for l in workflow.get("links", [])}
    results: dict[int, tuple] = {}

    def run(node_id: int) -> tuple:
        if node_id in results:
            return results[node_id]
        node = nodes[node_id]
        cls = mappings[node["type"]]
        kwargs: dict[str, Any] = {}
        for spec, value in zip(widget_specs(cls), node.get("widgets_values", [])):
            if spec.kind not in ("CONTROL", "UPLOAD"):
                kwargs[spec.name] = overrides.get((node["type"], spec.name), value)
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, src, src_slot, _, _, _ = links[slot["link"]]
                kwargs[slot["name"]] = run(src)[src_slot]
        instance = cls()
        out = getattr(instance, cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):
            out = tuple(out.get("result", ()))
        results[node_id] = out
        return out

    for node_id in output_node_ids(workflow, mappings):
        run(node_id)
    return results


def load_workflow(path: Path) -> dict:
    return json.loads(Path(path).read_text())
