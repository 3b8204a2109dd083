"""RAFT: parity with the official outputs, and the building blocks on hand-made inputs.

Parity data: ``shared/propainter_parity/chain_raft.safetensors`` holds the official
bidirectional wrapper's flows for ``chain_inputs.frames`` (1 x 12 x 3 x 128 x 160, bmx-trees)
with the manifest's pseudo-random weights. Tolerance ``max|d| <= 1e-4 * max|ref|`` per tensor
(the parity README): faithful variants (thread count, +-1 ulp on every weight and input, torch
2.12 vs 2.13) stay below 1.7e-6, while real mistakes (one weight x1.01, one iteration
missing, correlation not scaled) reach 1.1e-2 or more.
"""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from propainter_core.checkpoints import convert_to_safetensors, load_weights, read_state_dict
from propainter_core.ops.sampling import sample_at_pixels
from propainter_core.raft import (
    RAFT,
    ConvEncoder,
    CorrelationPyramid,
    RaftConfig,
    UpdateBlock,
    bidirectional_flow,
    build_raft,
    pixel_grid,
)
from shared_paths import PARITY_DIR

RELATIVE_TOLERANCE = 1e-4


def _relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module")
def raft(parity_checkpoints) -> RAFT:
    model = build_raft(RaftConfig())
    load_weights(model, parity_checkpoints["raft"], network="raft")
    return model


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return load_file(str(PARITY_DIR / "chain_inputs.safetensors"))["frames"]


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(PARITY_DIR / "chain_raft.safetensors"))


@pytest.fixture(scope="module")
def flows_iter20(raft, frames):
    """The full parity case (12 frames, 20 iterations), computed once per module."""
    return bidirectional_flow(raft, frames, iters=20)


# ------------------------------------------------------------------------------ parity

def test_parity_iter20_twelve_frames(flows_iter20, reference):
    forward, backward = flows_iter20
    assert forward.shape == backward.shape == (1, 11, 2, 128, 160)
    assert _relative_error(forward, reference["flows_f"]) <= RELATIVE_TOLERANCE
    assert _relative_error(backward, reference["flows_b"]) <= RELATIVE_TOLERANCE


def test_parity_iter5_first_six_frames(raft, frames, reference):
    forward, backward = bidirectional_flow(raft, frames[:, :6], iters=5, max_pairs=4)
    assert _relative_error(forward, reference["flows_f_iter5_first6"]) <= RELATIVE_TOLERANCE
    assert _relative_error(backward, reference["flows_b_iter5_first6"]) <= RELATIVE_TOLERANCE


def test_forward_pair_matches_bidirectional(raft, frames, reference):
    """``RAFT.forward`` (the official pairwise path) gives the same flow as the batched one."""
    with torch.no_grad():
        backward = raft(frames[:, 3], frames[:, 2], iters=5)
    assert backward.shape == (1, 2, 128, 160)
    assert _relative_error(backward, reference["flows_b_iter5_first6"][:, 2]) <= RELATIVE_TOLERANCE


@pytest.mark.parametrize("form", ["safetensors", "wrapped"])
def test_other_file_forms_give_the_same_network(raft, parity_checkpoints, tmp_path, form):
    if form == "safetensors":
        path = convert_to_safetensors(parity_checkpoints["raft"], tmp_path / "raft.safetensors")
    else:
        path = tmp_path / "raft_wrapped.pth"
        torch.save({"model": read_state_dict(parity_checkpoints["raft"])}, path)
    other = build_raft()
    load_weights(other, path, network="raft")
    expected = raft.state_dict()
    for key, value in other.state_dict().items():  # bit-equal weights -> the same flows
        assert torch.equal(value, expected[key]), key


# ------------------------------------------------------------------------ guards

@pytest.mark.parametrize("height, width, problem", [
    (120, 160, "at least 128"), (128, 124, "at least 128"), (132, 160, "multiples of 8"),
    (136, 130, "multiples of 8"),
])
def test_refuses_sizes_the_official_code_breaks_on(height, width, problem):
    raft = build_raft()
    frames = torch.zeros(1, 2, 3, height, width)
    with pytest.raises(ValueError, match=f"{width}x{height}.*{problem}.*Pad or resize"):
        bidirectional_flow(raft, frames, iters=1)
    with pytest.raises(ValueError, match=problem):
        raft(frames[:, 0], frames[:, 1], iters=1)


@pytest.mark.parametrize("shape, problem", [
    ((2, 3, 128, 128), r"\[B, T, 3, H, W\]"), ((1, 2, 1, 128, 128), r"\[B, T, 3, H, W\]"),
    ((1, 1, 3, 128, 128), "at least 2 frames"),
])
def test_refuses_wrong_layouts(shape, problem):
    with pytest.raises(ValueError, match=problem):
        bidirectional_flow(build_raft(), torch.zeros(shape), iters=1)


def test_refuses_bad_iterations_and_pair_counts():
    raft = build_raft()
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="iters must be an integer of at least 1"):
            bidirectional_flow(raft, torch.zeros(1, 2, 3, 128, 128), iters=bad)
    with pytest.raises(ValueError, match="got 0"):
        raft(torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128), iters=0)
    with pytest.raises(ValueError, match="max_pairs must be None or at least 1, got 0"):
        bidirectional_flow(raft, torch.zeros(1, 2, 3, 128, 128), iters=1, max_pairs=0)


def test_refuses_a_model_in_training_mode():
    raft = build_raft().train()
    with pytest.raises(ValueError, match=r"training mode; call raft.eval\(\)"):
        bidirectional_flow(raft, torch.zeros(1, 2, 3, 128, 128), iters=1)


# ------------------------------------------------------------- small, hand-made cases

def test_random_model_batching_does_not_change_results():
    torch.manual_seed(0)
    raft = build_raft()
    frames = torch.rand(2, 2, 3, 128, 136) * 2 - 1
    forward, backward = bidirectional_flow(raft, frames, iters=2)
    forward_1, backward_1 = bidirectional_flow(raft, frames, iters=2, max_pairs=1)
    forward_4, backward_4 = bidirectional_flow(raft, frames, iters=2, max_pairs=4)  # both directions
    assert forward.shape == backward.shape == (2, 1, 2, 128, 136)
    assert torch.isfinite(forward).all() and torch.isfinite(backward).all()
    assert not torch.allclose(forward, -backward, atol=1e-3)  # two real, distinct directions
    torch.testing.assert_close(forward_1, forward, rtol=0, atol=1e-4)
    torch.testing.assert_close(backward_1, backward, rtol=0, atol=1e-4)
    torch.testing.assert_close(forward_4, forward, rtol=0, atol=1e-4)
    torch.testing.assert_close(backward_4, backward, rtol=0, atol=1e-4)


def test_network_accepts_injected_parts():
    """A smaller correlation block (2 levels, radius 1) and its matching update block."""
    torch.manual_seed(0)
    corr = CorrelationPyramid(levels=2, radius=1)
    raft = RAFT(
        feature_encoder=ConvEncoder(out_channels=32, norm="instance"),
        context_encoder=ConvEncoder(out_channels=256, norm="batch"),
        corr_block=corr,
        update_block=UpdateBlock(corr_channels=corr.channels),
    ).eval()
    with torch.no_grad():
        flow = raft(torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128), iters=2)
    assert flow.shape == (1, 2, 128, 128) and torch.isfinite(flow).all()


def test_pixel_grid_is_x_then_y():
    grid = pixel_grid(2, 3, 4)
    assert grid.shape == (2, 2, 3, 4)
    assert grid[0, 0, 2].tolist() == [0, 1, 2, 3]  # x along a row
    assert grid[1, 1, :, 3].tolist() == [0, 1, 2]  # y down a column


def test_sample_at_pixels_hits_pixel_centres_and_zero_outside():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    coords = torch.tensor([[[[0.0, 0.0], [3.0, 2.0], [1.5, 1.0], [-1.0, 0.0], [4.0, 2.0]]]])
    out = sample_at_pixels(image, coords)
    assert out.flatten().tolist() == [0.0, 11.0, 5.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="1x4 map"):
        sample_at_pixels(torch.zeros(1, 1, 1, 4), coords)


def test_correlation_window_order_follows_the_checkpoint():
    """Window row index moves x, column index moves y (official quirk the weights expect)."""
    corr = CorrelationPyramid(levels=1, radius=1)
    features1 = torch.ones(1, 1, 4, 4)
    features2 = torch.arange(16.0).view(1, 1, 4, 4)  # value = 4 * y + x
    pyramid = corr.build(features1, features2)
    assert len(pyramid) == 1 and pyramid[0].shape == (16, 1, 4, 4)
    centre = torch.zeros(1, 2, 4, 4)
    centre[:, 0], centre[:, 1] = 1.0, 2.0  # every position looks at x=1, y=2
    window = corr.lookup(pyramid, centre)[0, :, 0, 0].view(3, 3)
    x = torch.tensor([0.0, 1.0, 2.0])
    y = torch.tensor([1.0, 2.0, 3.0])
    expected = (4 * y[None, :] + x[:, None]) / 1.0  # sqrt(C) = 1
    assert torch.equal(window, expected)


def test_correlation_pyramid_scales_and_pools():
    corr = CorrelationPyramid(levels=3, radius=4)
    features = torch.full((1, 4, 8, 8), 1.0)
    pyramid = corr.build(features, 2 * features)
    assert [p.shape[-1] for p in pyramid] == [8, 4, 2]
    assert all(torch.all(p == 4.0) for p in pyramid)  # 4 channels * 2 / sqrt(4)


def test_upsample_flow_of_constant_field():
    raft = build_raft()
    flow = torch.tensor([1.5, -2.0]).view(1, 2, 1, 1).expand(1, 2, 4, 5).contiguous()
    weights = torch.zeros(1, 9 * 64, 4, 5)
    weights[:, 4 * 64:5 * 64] = 50.0  # all weight on the centre tap
    fine = raft.upsample_flow(flow, weights)
    assert fine.shape == (1, 2, 32, 40)
    torch.testing.assert_close(fine[0, 0], torch.full((32, 40), 12.0))
    torch.testing.assert_close(fine[0, 1], torch.full((32, 40), -16.0))
    uniform = raft.upsample_flow(flow, torch.zeros(1, 9 * 64, 4, 5))
    assert uniform[0, 0, 12, 16].item() == pytest.approx(12.0)  # interior: 9 equal taps
    assert uniform[0, 0, 0, 0].item() == pytest.approx(12.0 * 4 / 9)  # corner: 5 taps are padding


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    raft = build_raft()
    image1, image2 = torch.rand(2, 1, 3, 128, 128) * 2 - 1
    flow = raft(image1, image2, iters=2)  # step 1 starts from zero flow: convf1 needs step 2
    flow.square().mean().backward()
    missing = [name for name, p in raft.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_non_contiguous_frames_give_the_same_flows():
    torch.manual_seed(0)
    raft = build_raft()
    frames = torch.rand(1, 2, 3, 128, 128) * 2 - 1
    channels_last = frames.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    assert not channels_last.is_contiguous()
    forward, _ = bidirectional_flow(raft, frames, iters=1)
    forward_nc, _ = bidirectional_flow(raft, channels_last, iters=1)
    torch.testing.assert_close(forward_nc, forward, rtol=0, atol=1e-5)
