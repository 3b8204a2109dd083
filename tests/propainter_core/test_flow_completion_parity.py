"""Our flow-completion network against the official one: same weights, same inputs, same outputs.

Reference outputs: ../shared/propainter_parity/chain_flowcomp.safetensors, made by the official
``RecurrentFlowCompleteNet.forward_bidirect_flow`` and ``combine_flow`` on the RAFT flows of
``chain_raft.safetensors`` and the masks of ``chain_inputs.safetensors`` (B=1, T=12, 128x160).

Tolerance: ``max|ours - ref| <= 1e-4 * max|ref|`` per tensor (the parity README). Faithful
rewrites (thread count, 1-ulp weight changes, a plain-torch deformable convolution) move the
output by at most 2e-6 of its scale; real mistakes (one weight x1.01, swapped layers, a missing
modulation mask) move it by 2.5e-2 or more. 1e-4 sits between the two.
"""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from parity_weights import load_manifest
from propainter_core.checkpoints import load_weights
from propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion, combine_flows
from shared_paths import PARITY_DIR

RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def network(parity_checkpoints):
    """Loaded the way users' files are: the rebuilt official-format .pth through load_weights."""
    net = build_flow_completion(FlowCompletionConfig())
    load_weights(net, parity_checkpoints["flow_completion"], network="flow_completion")
    return net


@pytest.fixture(scope="module")
def parity_run(network):
    flows = load_file(PARITY_DIR / "chain_raft.safetensors")
    masks = load_file(PARITY_DIR / "chain_inputs.safetensors")["masks"]
    expected = load_file(PARITY_DIR / "chain_flowcomp.safetensors")
    with torch.no_grad():
        pred_f, pred_b = network.complete_bidirectional(flows["flows_f"], flows["flows_b"], masks)
        completed_f, completed_b = combine_flows(flows["flows_f"], flows["flows_b"], pred_f, pred_b, masks)
    ours = {"pred_flows_f": pred_f, "pred_flows_b": pred_b,
            "completed_flows_f": completed_f, "completed_flows_b": completed_b}
    return ours, expected, flows, masks


def test_state_dict_matches_the_manifest(network):
    manifest = load_manifest("flow_completion")
    entries = {e["key"]: e for e in manifest["entries"]}
    state = network.state_dict()
    assert set(state) == set(entries)
    assert all(list(state[k].shape) == entries[k]["shape"] for k in entries)
    assert sum(p.numel() for p in network.parameters()) == manifest["num_float_values"]
    assert sum(math.prod(e["shape"]) for e in entries.values()) == manifest["num_float_values"]


@pytest.mark.parametrize("name", ["pred_flows_f", "pred_flows_b", "completed_flows_f", "completed_flows_b"])
def test_outputs_match_official(parity_run, name):
    ours, expected, _, _ = parity_run
    ref = expected[name]
    assert ours[name].shape == ref.shape == (1, 11, 2, 128, 160)
    scale = ref.abs().max()
    assert scale > 1.0, "reference flows should have real spread (parity README: about +-10 px)"
    margin = ((ours[name] - ref).abs().max() / scale).item()
    assert margin <= RELATIVE_TOLERANCE, f"{name}: max|d| / scale = {margin:.2e}"


def test_completed_flows_keep_the_given_flows_outside_the_hole(parity_run):
    ours, _, flows, masks = parity_run
    outside_f = (masks[:, :-1] == 0).expand_as(flows["flows_f"])
    outside_b = (masks[:, 1:] == 0).expand_as(flows["flows_b"])
    assert torch.equal(ours["completed_flows_f"][outside_f], flows["flows_f"][outside_f])
    assert torch.equal(ours["completed_flows_b"][outside_b], flows["flows_b"][outside_b])
