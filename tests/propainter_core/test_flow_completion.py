"""Behaviour of the flow-completion network on a small configuration (fast, no checkpoint)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from propainter_core.flow_completion import (
    FlowCompletionConfig,
    RecurrentFlowCompletion,
    SecondOrderDeformableAlignment,
    build_flow_completion,
    combine_flows,
)

SMALL = FlowCompletionConfig(channels=(4, 8, 8), deform_groups=4, edge_channels=4)


def _random_inputs(batch=1, flows=3, size=(16, 24), seed=0):
    gen = torch.Generator().manual_seed(seed)
    flows_f = 3 * torch.randn(batch, flows, 2, *size, generator=gen)
    flows_b = 3 * torch.randn(batch, flows, 2, *size, generator=gen)
    masks = (torch.rand(batch, flows + 1, 1, *size, generator=gen) > 0.6).float()
    return flows_f, flows_b, masks


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    net = build_flow_completion(SMALL)
    # Non-zero offset heads, so that the deformable path really deforms.
    for module in net.modules():
        if isinstance(module, SecondOrderDeformableAlignment):
            torch.nn.init.uniform_(module.conv_offset[-1].weight, -0.3, 0.3)
    return net


def test_official_defaults():
    config = FlowCompletionConfig()
    assert (config.channels, config.deform_groups, config.max_residue_magnitude) == ((32, 64, 128), 16, 5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.deform_groups = 8  # type: ignore[misc]
    net = build_flow_completion()
    assert isinstance(net, RecurrentFlowCompletion) and not net.training
    align = net.feat_prop_module.deform_align["forward_"]
    assert (align.deform_groups, align.max_residue_magnitude, align.kernel_size) == (16, 5.0, (3, 3))
    assert align.conv_offset[0].in_channels == 3 * 128 and align.conv_offset[-1].out_channels == 27 * 16
    # Official initialisation: zero offsets and a 0.5 modulation mask before loading weights.
    offset, mask = align.offsets_and_mask(torch.randn(1, 384, 2, 3))
    assert torch.equal(offset, torch.zeros(1, 288, 2, 3)) and torch.equal(mask, torch.full((1, 144, 2, 3), 0.5))


@pytest.mark.parametrize("config,message", [
    (dict(channels=(4, 8)), "three positive ints"),
    (dict(channels=(4, 8, 6), deform_groups=8), "must divide the alignment input width 2 \\* 6"),
    (dict(max_residue_magnitude=0.0), "max_residue_magnitude must be positive"),
])
def test_config_errors(config, message):
    with pytest.raises(ValueError, match=message):
        FlowCompletionConfig(**config)


@pytest.mark.parametrize("batch,flows,size", [(1, 1, (8, 8)), (2, 3, (16, 24)), (1, 5, (24, 16))])
def test_shapes(small_net, batch, flows, size):
    flows_f, flows_b, masks = _random_inputs(batch, flows, size)
    with torch.no_grad():
        pred_f, pred_b = small_net.complete_bidirectional(flows_f, flows_b, masks)
        edges = small_net.edges(pred_f)
    assert pred_f.shape == pred_b.shape == (batch, flows, 2, *size)
    assert edges.shape == (batch, flows, 1, *size) and 0 < edges.min() and edges.max() < 1
    assert torch.isfinite(pred_f).all() and torch.isfinite(pred_b).all()


def test_flow_values_inside_the_hole_are_ignored(small_net):
    flows_f, flows_b, masks = _random_inputs()
    noisy_f = flows_f + 100 * masks[:, :-1] * torch.randn_like(flows_f)
    noisy_b = flows_b + 100 * masks[:, 1:] * torch.randn_like(flows_b)
    with torch.no_grad():
        clean = small_net.complete_bidirectional(flows_f, flows_b, masks)
        noisy = small_net.complete_bidirectional(noisy_f, noisy_b, masks.bool())
    torch.testing.assert_close(noisy.forward, clean.forward, rtol=0, atol=0)
    torch.testing.assert_close(noisy.backward, clean.backward, rtol=0, atol=0)


def test_backward_direction_runs_time_reversed(small_net):
    # Backward flows equal to the time-reversed forward flows, with time-reversed masks, must give
    # the time-reversed forward prediction: checks the mask alignment (t vs t+1) and both flips.
    flows_f, _, masks = _random_inputs(flows=4)
    with torch.no_grad():
        pred_f, _ = small_net.complete_bidirectional(flows_f, flows_f, masks)
        _, pred_b = small_net.complete_bidirectional(flows_f, flows_f.flip(1), masks.flip(1))
    torch.testing.assert_close(pred_b, pred_f.flip(1), rtol=0, atol=0)


def test_batch_items_are_independent(small_net):
    flows_f, flows_b, masks = _random_inputs(batch=2)
    with torch.no_grad():
        both = small_net.complete_bidirectional(flows_f, flows_b, masks)
        second = small_net.complete_bidirectional(flows_f[1:], flows_b[1:], masks[1:])
    torch.testing.assert_close(both.forward[1:], second.forward, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both.backward[1:], second.backward, rtol=1e-5, atol=1e-5)


def test_combine_flows_exact_values():
    flows_f = torch.full((1, 2, 2, 8, 8), 1.0)
    flows_b = torch.full((1, 2, 2, 8, 8), 2.0)
    pred_f = torch.full((1, 2, 2, 8, 8), 10.0)
    pred_b = torch.full((1, 2, 2, 8, 8), 20.0)
    masks = torch.zeros(1, 3, 1, 8, 8)
    masks[0, 0, 0, 0, 0] = 1  # frame 0: forward flow 0 only
    masks[0, 2, 0, 1, 1] = 1  # frame 2: backward flow 1 only
    masks[0, 1, 0, 2, 2] = 0.25  # soft mask: blend
    out_f, out_b = combine_flows(flows_f, flows_b, pred_f, pred_b, masks)
    expected_f, expected_b = flows_f.clone(), flows_b.clone()
    expected_f[0, 0, :, 0, 0] = 10.0
    expected_f[0, 1, :, 2, 2] = 0.25 * 10 + 0.75 * 1
    expected_b[0, 1, :, 1, 1] = 20.0
    expected_b[0, 0, :, 2, 2] = 0.25 * 20 + 0.75 * 2
    torch.testing.assert_close(out_f, expected_f, rtol=0, atol=0)
    torch.testing.assert_close(out_b, expected_b, rtol=0, atol=0)


@pytest.mark.parametrize("change,message", [
    (lambda f, b, m: (f[:, :, :1], b, m), r"flows_forward must have shape \[B, T-1, 2, H, W\]"),
    (lambda f, b, m: (f, b[:, :2], m), r"flows_backward \(1, 2, 2, 16, 24\) must match flows_forward"),
    (lambda f, b, m: (f, b, m[:, :3]), r"masks must have shape \[B=1, T=4, 1, H=16, W=24\] for 3 flows"),
    (lambda f, b, m: (f[..., :20], b[..., :20], m[..., :20]), r"H, W positive multiples of 8, got 3 flows of 16x20"),
])
def test_input_errors(small_net, change, message):
    args = change(*_random_inputs())
    with pytest.raises(ValueError, match=message):
        small_net.complete_bidirectional(*args)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(1)
    net = build_flow_completion(SMALL).train()
    for module in net.modules():
        if isinstance(module, SecondOrderDeformableAlignment):
            torch.nn.init.uniform_(module.conv_offset[-1].weight, -0.3, 0.3)
    flows_f, flows_b, masks = _random_inputs()
    pred_f, pred_b = net.complete_bidirectional(flows_f, flows_b, masks)
    loss = pred_f.square().mean() + pred_b.square().mean() + net.edges(pred_f).mean()
    loss.backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
