"""SAM 2 inside the engine: tracking over the file equals the SAM 2 Propagate node's tracking."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine_testing import decode_all, make_clip, small_settings
from sam2_testing import handle_for, tiny_predictor
from vanish.nodes import engine
from vanish.nodes.engine.masks import MaskStore
from vanish.nodes.engine.tracking import track_to_store
from vanish.nodes.ops import mask_ops, sam2_session
from vanish.nodes.ops.sam2_prompts import PromptSet

# clicks on frame 2 (of 5) and a box on frame 3: both passes run, forwards and backwards
PROMPTS = {"version": 1, "objects": [{"id": 3, "frames": {"2": {"positive": [[30, 22]]}}},
                                     {"id": 5, "frames": {"3": {"boxes": [[2, 2, 20, 14]]}}}]}


@pytest.mark.slow  # random-weight SAM 2 tiny: about 2 s a frame on a loaded CPU
def test_prompts_track_over_the_file_like_the_node_and_resume_reuses_the_masks(tmp_path):
    clip = make_clip(tmp_path / "clip", t=5, audio=False)
    prompts = PromptSet.from_json(PROMPTS)
    handle = handle_for(tiny_predictor())
    steps = []
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), prompts=prompts, sam2=handle,
                                work_dir=tmp_path / "work", keep_work=True, progress=lambda d, t: steps.append((d, t)))
    frames = torch.from_numpy(decode_all(clip.video)).float() / 255.0
    with handle.acquire() as predictor:
        expected = sam2_session.track_video(predictor, frames, prompts).union() > 0  # [T, H, W]
    store = MaskStore(result.work_dir / "masks" / "objects.bits", 2, 5, 48, 64)
    assert np.array_equal(store.read_union(0, 5), expected.numpy())
    # one bit per pixel and object, on disk
    assert (result.work_dir / "masks" / "objects.bits").stat().st_size == 2 * 5 * 48 * 64 // 8
    # outside the refined mask the output is the source, bit for bit
    soft, _ = mask_ops.refine_masks(expected.float(), small_settings().mask.refine_settings())
    out, source = decode_all(result.output), decode_all(clip.video)
    assert np.array_equal(out[soft.numpy() == 0], source[soft.numpy() == 0])
    assert steps[-1][0] == steps[-1][1]
    # a complete mask store is reused: no model needed the second time
    again = track_to_store(engine.open_source(clip.video), prompts, None, result.work_dir / "masks", None, None)
    assert np.array_equal(again.read_union(0, 5), expected.numpy())
