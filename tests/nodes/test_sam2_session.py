"""SAM 2 propagation over an IMAGE tensor: passes, segments, bounded memory, prompts reaching SAM 2.

Two kinds of tests: the real predictor (tiny, random weights, 64 px input, 3 frames) for what
SAM 2 receives and returns, and a fake predictor that records the state for long clips, where
the real one would be far too slow for CI.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sam2_testing import IMAGE_SIZE, FakePredictor, handle_for, moving_square_clip, tiny_predictor
from shared_paths import ROOT
from vanish.nodes import _comfy
from vanish.nodes.ops import sam2_session as S
from vanish.nodes.ops.sam2_prompts import FramePrompts, PromptSet


def _record(mp: pytest.MonkeyPatch, predictor, name: str) -> list[dict]:
    calls: list[dict] = []
    original = getattr(predictor, name)

    def spy(state, *args, **kwargs):
        calls.append({"args": args, **kwargs})
        return original(state, *args, **kwargs)

    mp.setattr(predictor, name, spy)
    return calls


MAIN_PROMPTS = {"objects": [
    {"id": 1, "frames": {"1": {"positive": [[16, 24]], "negative": [[50, 40]]}}},
    {"id": 2, "frames": {"2": {"boxes": [[8, 16, 40, 32]]}}}]}


@pytest.fixture(scope="module")
def main_run():
    """Two objects first prompted on frames 1 and 2 of a 3-frame clip, both directions."""
    predictor = tiny_predictor()
    progress: list[tuple[int, int]] = []
    with pytest.MonkeyPatch.context() as mp:
        calls = _record(mp, predictor, "add_new_points_or_box")
        result = S.track_video(predictor, moving_square_clip(3), PromptSet.from_json(MAIN_PROMPTS),
                               S.TrackOptions(direction="both"), lambda d, t: progress.append((d, t)))
    return result, calls, progress


def test_masks_cover_every_frame_before_and_after_the_prompts(main_run):
    result, _, progress = main_run
    assert result.masks.shape == (2, 3, 48, 64) and result.masks.dtype == torch.bool
    assert result.object_ids == [1, 2]
    assert result.passes == ["forward", "backward"]
    assert bool(result.covered.all())  # frame 0 comes from the backward pass only
    assert progress[-1] == (5, 5)  # forward frames 1-2, backward frames 2-0
    assert [d for d, _ in progress] == [1, 2, 3, 4, 5]


def test_union_and_single_object_outputs(main_run):
    result, _, _ = main_run
    union = result.union()
    assert union.shape == (3, 48, 64) and union.dtype == torch.float32
    assert torch.equal(union, (result.masks[0] | result.masks[1]).float())
    assert torch.equal(result.object_mask(2), result.masks[1].float())
    assert not torch.equal(result.masks[0], result.masks[1])


def test_negative_points_and_boxes_reach_the_predictor(main_run):
    _, calls, _ = main_run
    by_object = {c["obj_id"]: c for c in calls}
    assert len(calls) == 4  # each object's prompts go into the forward and the backward session
    one, two = by_object[1], by_object[2]
    assert one["frame_idx"] == 1 and one["box"] is None
    np.testing.assert_array_equal(one["points"], [[16, 24], [50, 40]])
    np.testing.assert_array_equal(one["labels"], [1, 0])
    assert two["frame_idx"] == 2 and two["points"] is None
    np.testing.assert_array_equal(two["box"], [8, 16, 40, 32])


def test_segments_carry_the_last_mask_into_the_next_segment():
    predictor = tiny_predictor()
    with pytest.MonkeyPatch.context() as mp:
        carried = _record(mp, predictor, "add_new_mask")
        result = S.track_video(predictor, moving_square_clip(3),
                               PromptSet.from_json({"objects": [{"id": 4, "frames": {"0": {"positive": [[12, 20]]}}}]}),
                               S.TrackOptions(direction="forward", segment_frames=2))
    assert bool(result.covered.all())
    assert [(c["args"][0], c["args"][1]) for c in carried] == [(1, 4)]  # frame 1, object 4
    assert torch.equal(carried[0]["args"][2], result.masks[0, 1])


def test_several_boxes_on_one_frame_become_one_mask_prompt():
    predictor = tiny_predictor()
    fp = FramePrompts(positive=[(10.0, 10.0), (60.0, 5.0)], negative=[(30.0, 30.0)],
                      boxes=[(2.0, 2.0, 20.0, 20.0), (30.0, 20.0, 60.0, 44.0)])
    parts = S.split_boxes(fp)
    assert parts == [FramePrompts([(10.0, 10.0)], [(30.0, 30.0)], [(2.0, 2.0, 20.0, 20.0)]),
                     FramePrompts([], [(30.0, 30.0)], [(30.0, 20.0, 60.0, 44.0)]),
                     FramePrompts([(60.0, 5.0)], [(30.0, 30.0)], [])]
    ps = PromptSet.from_json({"objects": [{"id": 1, "frames": {"0": fp.to_dict()}}]})
    with pytest.MonkeyPatch.context() as mp:
        masks = _record(mp, predictor, "add_new_mask")
        S.track_video(predictor, moving_square_clip(1), ps, S.TrackOptions(direction="forward"))
    assert len(masks) == 1 and masks[0]["args"][2].shape == (48, 64)


def test_preview_single_frame_one_mask_per_object():
    handle = handle_for(tiny_predictor())
    frame = (moving_square_clip(1)[0].numpy() * 255).astype(np.uint8)
    masks = S.preview_single_frame(handle, frame, {
        3: FramePrompts(positive=[(16.0, 24.0)]),
        5: FramePrompts(boxes=[(1.0, 1.0, 20.0, 20.0), (30.0, 20.0, 60.0, 40.0)])})
    assert masks.shape == (2, 48, 64) and masks.dtype == bool
    assert S.preview_single_frame(handle, frame, []).shape == (0, 48, 64)


def test_cancel_lands_within_a_frame(comfy):
    predictor = tiny_predictor()
    stages: list[str] = []
    hooks = [predictor.image_encoder.register_forward_hook(lambda *a: _comfy.request_cancel(True)),
             predictor.sam_mask_decoder.register_forward_hook(lambda *a: stages.append("decoder"))]
    try:
        with pytest.raises(_comfy.Interrupted):
            S.track_video(predictor, moving_square_clip(2),
                          PromptSet.from_json({"objects": [{"id": 1, "frames": {"0": {"positive": [[5, 5]]}}}]}))
    finally:
        for hook in hooks:
            hook.remove()
    assert stages == []  # stopped after the image encoder; the mask decoder of frame 0 never ran


def test_lazy_frames_match_the_official_normalisation():
    images = moving_square_clip(4)
    frames = S.LazyFrames(images, IMAGE_SIZE, torch.device("cpu"), start=1, stop=3)
    assert len(frames) == 2
    x = frames[1]  # clip frame 2
    assert x.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and frames.prepared == 1
    mean = torch.tensor(S.IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(S.IMAGE_STD).view(3, 1, 1)
    grey = torch.full((48, 64, 3), 0.5)
    flat = S.LazyFrames(grey[None], IMAGE_SIZE, torch.device("cpu"))[0]
    torch.testing.assert_close(flat, ((torch.full((3, 1, 1), 0.5) - mean) / std).expand_as(flat))
    with pytest.raises(IndexError):
        frames[2]


# ---------------------------------------------------------------------- planning (no model)
def _prompts(firsts: dict[int, list[int]]) -> PromptSet:
    return PromptSet.from_json({"objects": [
        {"id": i, "frames": {str(t): {"positive": [[1, 1]]} for t in ts}} for i, ts in firsts.items()]})


def test_plan_both_directions_writes_each_object_from_its_own_first_prompt():
    forward, backward = S.plan_passes(_prompts({1: [1, 6], 2: [3]}), 8, "both")
    assert forward.frames == list(range(1, 8)) and not forward.reverse
    assert backward.frames == [3, 2, 1, 0] and backward.reverse
    assert [forward.writes(2, t) for t in (2, 3)] == [False, True]
    assert [backward.writes(1, t) for t in (1, 2)] == [True, False]
    assert backward.writes(2, 3) and not backward.writes(9, 0)


def test_plan_single_direction_and_prompts_on_frame_zero():
    (fwd,) = S.plan_passes(_prompts({1: [0]}), 5, "both")
    assert fwd.frames == [0, 1, 2, 3, 4]
    assert [p.name for p in S.plan_passes(_prompts({1: [2]}), 5, "forward")] == ["forward"]
    (back,) = S.plan_passes(_prompts({1: [1, 3]}), 5, "backward")
    assert back.frames == [3, 2, 1, 0] and back.writes(1, 3)
    (zero,) = S.plan_passes(_prompts({1: [0]}), 5, "backward")
    assert zero.frames == [0]


def test_segments_overlap_by_the_carried_frame():
    assert S._segments(list(range(7)), 3) == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert S._segments(list(range(6)), 3) == [[0, 1, 2], [2, 3, 4], [4, 5]]
    assert S._segments([4, 3, 2, 1, 0], 2) == [[4, 3], [3, 2], [2, 1], [1, 0]]
    assert S._segments(list(range(5)), 0) == [list(range(5))]
    assert S._segments(list(range(5)), 9) == [list(range(5))]


def test_prune_memory_keeps_the_attention_window():
    state = {"output_dict_per_obj": {0: {"non_cond_frame_outputs": {t: {} for t in range(40)},
                                         "cond_frame_outputs": {0: {}}}}}
    assert S.prune_memory(state, 30, False, 17) == 13
    assert sorted(state["output_dict_per_obj"][0]["non_cond_frame_outputs"]) == list(range(13, 40))
    assert S.prune_memory(state, 13, True, 17) == 9  # reverse: drop frames after 30
    assert max(state["output_dict_per_obj"][0]["non_cond_frame_outputs"]) == 30
    assert state["output_dict_per_obj"][0]["cond_frame_outputs"] == {0: {}}
    assert S.memory_window(tiny_predictor()) == 17  # 16 object pointers + the current frame


@pytest.mark.parametrize("segment_frames", [0, 64])
def test_long_clip_memory_stays_bounded_and_every_frame_gets_a_mask(segment_frames):
    fake = FakePredictor()
    images = torch.zeros(600, 6, 8, 3)
    result = S.track_video(fake, images, _prompts({1: [300], 3: [310]}),
                           S.TrackOptions(segment_frames=segment_frames))
    assert bool(result.covered.all())
    assert bool(result.masks[0, :, :, 1].all()) and not bool(result.masks[0, :, :, 3].any())
    assert bool(result.masks[1, :, :, 3].all())
    window = S.memory_window(fake)
    # each object keeps its window plus the frame being tracked, whatever the clip length
    assert fake.peak_memory <= 2 * (window + 2)
    if segment_frames:
        # forward 300..599 and backward 310..0 in segments of 64 overlapping by one frame
        assert fake.sessions == 5 + 5
        assert fake.masks_added[0] == (363, 1)
    else:
        assert fake.sessions == 2 and fake.masks_added == []


def test_tracked_range_leaves_other_frames_empty():
    fake = FakePredictor()
    result = S.track_video(fake, torch.zeros(10, 6, 8, 3), _prompts({2: [5]}),
                           S.TrackOptions(start_frame=3, max_frames=4))
    assert result.covered[0].tolist() == [False] * 3 + [True] * 4 + [False] * 3
    assert not bool(result.masks[0, :3].any()) and bool(result.masks[0, 3:7, :, 2].all())


def test_fill_small_holes():
    mask = np.ones((9, 9), dtype=bool)
    mask[2, 2] = False  # a one-pixel hole
    mask[5:8, 5:8] = False  # a nine-pixel hole
    assert S.fill_small_holes(mask, 0) is mask
    filled = S.fill_small_holes(mask, 4)
    assert filled[2, 2] and not filled[6, 6]
    assert S.fill_small_holes(mask, 9).all()


def test_never_imports_torchvision():
    code = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        spec = importlib.util.spec_from_file_location("vanish", {str(ROOT / '__init__.py')!r},
                                                      submodule_search_locations=[{str(ROOT)!r}])
        pack = importlib.util.module_from_spec(spec); sys.modules["vanish"] = pack; spec.loader.exec_module(pack)
        import numpy as np
        from vanish.nodes import segmentation
        from vanish.nodes.ops import sam2_session
        from sam2_testing import handle_for, tiny_predictor
        handle = handle_for(tiny_predictor())
        frame = np.zeros((32, 32, 3), np.uint8)
        sam2_session.preview_single_frame(handle, frame, [sam2_session.FramePrompts(positive=[(5.0, 5.0)])])
        bad = sorted(m for m in sys.modules if m == "torchvision" or m.startswith("torchvision."))
        assert not bad, bad
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_bf16_autocast_runs_on_cpu():
    handle = handle_for(tiny_predictor())
    handle.dtype = torch.bfloat16  # the loader picks this for precision "bf16"
    frame = (moving_square_clip(1)[0].numpy() * 255).astype(np.uint8)
    masks = S.preview_single_frame(handle, frame, [FramePrompts(positive=[(16.0, 24.0)])])
    assert masks.shape == (1, 48, 64) and masks.dtype == bool
    assert next(handle.predictor.parameters()).dtype == torch.float32  # weights stay fp32
