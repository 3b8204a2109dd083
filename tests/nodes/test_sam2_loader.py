"""SAM 2 checkpoints: formats, config detection, safe loading, clear errors, cache, loader node."""
from __future__ import annotations

import os
import time

import pytest
import torch
from safetensors.torch import save_file

from sam2_testing import IMAGE_SIZE, fake_state, tiny_predictor
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import sam2_loader as L
from vanish.nodes.segmentation import VanishSAM2ModelLoader

SIZES = ("tiny", "small", "base_plus", "large")


@pytest.mark.parametrize("version", ["2", "2.1"])
@pytest.mark.parametrize("size", SIZES)
def test_detects_every_official_model_from_its_keys(version, size):
    variant = L.detect_variant(fake_state(version, size), "x.pt")
    assert variant == L.SAM2Variant(version, size)
    prefix = "sam2" if version == "2" else "sam2.1"
    assert variant.config_name.startswith(f"configs/{prefix}/{prefix}_hiera_")
    assert variant.official_filename == f"{prefix}_hiera_{size}.pt"


def test_detection_ignores_the_file_name_and_reads_the_real_tiny_weights():
    state = tiny_predictor().state_dict()
    assert L.detect_variant(state, "sam2_hiera_large.pt") == L.SAM2Variant("2.1", "tiny")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """The random tiny 2.1 weights as the official .pt, a bare .pt and an fp16 .safetensors."""
    folder = tmp_path_factory.mktemp("sam2_ckpt")
    state = {k: v.clone() for k, v in tiny_predictor().state_dict().items()}
    torch.save({"model": state}, folder / "official.pt")
    torch.save(state, folder / "bare.pth")
    save_file({"model." + k: v.half().contiguous() for k, v in state.items()},
              str(folder / "mirror-fp16.safetensors"))
    return folder, state


@pytest.mark.parametrize("name, exact", [("official.pt", True), ("bare.pth", True),
                                         ("mirror-fp16.safetensors", False)])
def test_reads_all_three_formats(tiny_files, name, exact):
    folder, reference = tiny_files
    state = L.read_state_dict(folder / name)
    assert set(state) == set(reference)
    key = "image_encoder.trunk.patch_embed.proj.weight"
    assert state[key].dtype == torch.float32
    tol = 0 if exact else 1e-3  # fp16 rounding of values in about -0.1..0.1
    torch.testing.assert_close(state[key], reference[key], atol=tol, rtol=tol)
    assert L.detect_variant(state, name) == L.SAM2Variant("2.1", "tiny")


def test_load_builds_the_detected_model_and_caches_it(tiny_files):
    folder, reference = tiny_files
    L.clear_cache()
    handle = L.load_sam2(folder / "official.pt", "fp32", torch.device("cpu"), image_size=IMAGE_SIZE)
    assert handle.variant == L.SAM2Variant("2.1", "tiny") and handle.image_size == IMAGE_SIZE
    assert type(handle.predictor).__name__ == "SAM2VideoPredictor"
    assert handle.predictor.fill_hole_area == 0 and handle.predictor.binarize_mask_from_pts_for_mem_enc
    torch.testing.assert_close(handle.predictor.state_dict()["no_obj_embed_spatial"],
                               reference["no_obj_embed_spatial"], atol=0, rtol=0)
    assert L.last_loaded_model() is handle
    again = L.load_sam2(folder / "official.pt", "fp32", torch.device("cpu"), image_size=IMAGE_SIZE)
    assert again is handle  # same file, mtime, precision, device: reused
    stamp = time.time() + 5
    os.utime(folder / "official.pt", (stamp, stamp))
    reloaded = L.load_sam2(folder / "official.pt", "fp32", torch.device("cpu"), image_size=IMAGE_SIZE)
    assert reloaded is not handle and L.last_loaded_model() is reloaded
    L.clear_cache()
    assert L.last_loaded_model() is None


def test_propainter_checkpoint_is_named(tmp_path):
    from parity_weights import load_manifest

    rows = load_manifest("raft")
    rows = rows if isinstance(rows, list) else rows.get("entries", list(rows.values()))
    torch.save({r["key"]: torch.zeros(1) for r in rows}, tmp_path / "raft-things.pth")
    with pytest.raises(L.CheckpointError) as info:
        L.detect_variant(L.read_state_dict(tmp_path / "raft-things.pth"), "raft-things.pth")
    assert "'raft-things.pth' is not a SAM 2 checkpoint; it looks like a RAFT optical-flow" in info.value.problem
    assert "sam2.1_hiera_tiny.pt" in info.value.fix


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_file_is_reported_as_damaged(tmp_path, suffix):
    state = fake_state("2.1", "tiny")
    path = tmp_path / f"sam2.1_hiera_tiny{suffix}"
    if suffix == ".pt":
        torch.save({"model": state}, path)
    else:
        save_file(state, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(L.CheckpointError) as info:
        L.read_state_dict(path)
    assert "could not be read: it is damaged or incomplete" in info.value.problem
    assert "download the file again" in info.value.fix


class _NotWeights:
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": _NotWeights()}, tmp_path / "evil.pt")
    with pytest.raises(L.CheckpointError, match="cannot be loaded safely"):
        L.read_state_dict(tmp_path / "evil.pt")


def test_key_mismatch_lists_the_keys():
    model = tiny_predictor()
    state = dict(model.state_dict())
    state.pop("no_obj_embed_spatial")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(L.CheckpointError) as info:
        L.load_weights(model, state, "odd.pt")
    assert "1 missing keys (e.g. ['no_obj_embed_spatial'])" in info.value.problem
    assert "1 unexpected keys (e.g. ['extra.weight'])" in info.value.problem


@pytest.mark.parametrize("precision, expected", [("auto", torch.float32), ("fp32", torch.float32),
                                                 ("fp16", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_on_cpu(precision, expected):
    assert L.resolve_precision(precision, torch.device("cpu")) == expected


def test_loader_node_lists_the_sam2_folder_and_explains_a_missing_file(comfy):
    (comfy.models("sam2") / "sub").mkdir()
    (comfy.models("sam2") / "sub" / "a.safetensors").write_bytes(b"")
    (comfy.models("sam2") / "notes.txt").write_text("x")
    L._comfy.register_model_folder("sam2", L.MODEL_EXTENSIONS)
    assert VanishSAM2ModelLoader.INPUT_TYPES()["required"]["checkpoint"][0] == ["sub/a.safetensors"]
    with pytest.raises(VanishError) as info:
        VanishSAM2ModelLoader().load("sam2.1_hiera_large.pt")
    text = str(info.value)
    assert text.startswith("SAM 2 Model Loader: input 'checkpoint' the checkpoint 'sam2.1_hiera_large.pt' "
                           "was not found in ")
    assert str(comfy.models("sam2")) in text
    assert "sam2.1_hiera_base_plus.pt" in text and "github.com/facebookresearch/sam2" in text


def test_loader_node_wraps_a_wrong_file(comfy, tmp_path):
    L._comfy.register_model_folder("sam2", L.MODEL_EXTENSIONS)
    save_file({"encoder.layers.0.weight": torch.zeros(2), "transformers.0.x": torch.zeros(1)},
              str(comfy.models("sam2") / "ProPainter.safetensors"))
    with pytest.raises(VanishError, match="looks like ProPainter's inpainting checkpoint"):
        VanishSAM2ModelLoader().load("ProPainter.safetensors", "auto", "cpu")


def test_loader_node_reruns_when_the_file_changes(comfy):
    L._comfy.register_model_folder("sam2", L.MODEL_EXTENSIONS)
    path = comfy.models("sam2") / "sam2.1_hiera_tiny.pt"
    assert VanishSAM2ModelLoader.IS_CHANGED("sam2.1_hiera_tiny.pt").endswith("missing:auto:auto")
    path.write_bytes(b"x")
    first = VanishSAM2ModelLoader.IS_CHANGED("sam2.1_hiera_tiny.pt")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert VanishSAM2ModelLoader.IS_CHANGED("sam2.1_hiera_tiny.pt") != first
