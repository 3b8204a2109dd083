"""The headless workflow runner executes only what ComfyUI would: output nodes and their inputs
(issue 11: it ran every node, so a Warp Error node that ComfyUI skipped looked fine in the tests)."""
from __future__ import annotations

from workflow_tools import output_node_ids, run_workflow

CALLS: list[str] = []


class Source:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1})}}

    def run(self, value):
        CALLS.append("source")
        return (value,)


class Dangling:
    """Consumes the source, but nothing consumes it and it is not an output node."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"forceInput": True})}}

    def run(self, x):
        CALLS.append("dangling")
        return (x + 1,)


class Sink(Dangling):
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    def run(self, x):
        CALLS.append("sink")
        return {"ui": {"text": [str(x)]}, "result": ()}


MAPPINGS = {"Source": Source, "Dangling": Dangling, "Sink": Sink}


def _graph(with_sink: bool) -> dict:
    nodes = [{"id": 1, "type": "Source", "widgets_values": [5]},
             {"id": 2, "type": "Dangling", "widgets_values": [], "inputs": [{"name": "x", "link": 1}]},
             {"id": 4, "type": "Note", "widgets_values": ["a note"]}]
    links = [[1, 1, 0, 2, 0, "INT"]]
    if with_sink:
        nodes.append({"id": 3, "type": "Sink", "widgets_values": [], "inputs": [{"name": "x", "link": 2}]})
        links.append([2, 1, 0, 3, 0, "INT"])
    return {"nodes": nodes, "links": links}


def test_a_dangling_non_output_node_is_not_executed():
    CALLS.clear()
    results = run_workflow(_graph(with_sink=True), MAPPINGS)
    assert output_node_ids(_graph(with_sink=True), MAPPINGS) == [3]
    assert CALLS == ["source", "sink"] and set(results) == {1, 3}


def test_a_graph_without_output_nodes_runs_nothing():
    CALLS.clear()
    assert run_workflow(_graph(with_sink=False), MAPPINGS) == {} and CALLS == []


def test_the_shipped_warp_error_nodes_are_output_nodes():
    from vanish import NODE_CLASS_MAPPINGS

    assert NODE_CLASS_MAPPINGS["VanishWarpErrorMetric"].OUTPUT_NODE is True
    assert NODE_CLASS_MAPPINGS["VanishSaveVideo"].OUTPUT_NODE is True


def nodes_leading_to_outputs(workflow: dict, mappings: dict) -> set[int]:
    """Ids of the nodes ComfyUI would execute: output nodes and everything upstream of them."""
    upstream: dict[int, set[int]] = {}
    for _link_id, src, _src_slot, dst, _dst_slot, _type in workflow.get("links", []):
        upstream.setdefault(dst, set()).add(src)
    seen: set[int] = set()
    stack = list(output_node_ids(workflow, mappings))
    while stack:
        node_id = stack.pop()
        if node_id not in seen:
            seen.add(node_id)
            stack.extend(upstream.get(node_id, ()))
    return seen


def test_every_node_of_every_shipped_workflow_is_executed():
    """What would have caught issue 11's silent Warp Error: no shipped node is skipped by ComfyUI."""
    from shared_paths import ROOT
    from vanish import NODE_CLASS_MAPPINGS
    from workflow_tools import NOTE_TYPES, load_workflow

    paths = sorted((ROOT / "workflows").glob("*.json"))
    assert paths
    for path in paths:
        workflow = load_workflow(path)
        nodes = {n["id"] for n in workflow["nodes"] if n["type"] not in NOTE_TYPES}
        skipped = nodes - nodes_leading_to_outputs(workflow, NODE_CLASS_MAPPINGS)
        assert not skipped, f"{path.name}: nodes {sorted(skipped)} lead to no output node"
