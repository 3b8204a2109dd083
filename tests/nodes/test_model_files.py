"""Issue 11: model caches notice a replaced file that kept its mtime; standalone lookups stay
inside the models folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sam2_testing import IMAGE_SIZE, tiny_predictor
from vanish.nodes import NODE_CLASS_MAPPINGS, _comfy, inpainting
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import sam2_loader as L

CPU = torch.device("cpu")


def replace_keeping_mtime(path: Path, write) -> None:
    """Replace ``path`` as ``cp -p`` / ``rsync -t`` / tar do: new content, same size and mtime."""
    before = path.stat()
    staging = path.parent / "staging"  # same file name: torch.save names its records after it
    staging.mkdir(exist_ok=True)
    staged = staging / path.name
    write(staged)
    assert staged.stat().st_size == before.st_size  # the case the old key missed
    os.replace(staged, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def shifted(state: dict) -> dict:
    return {k: v + 0.5 if v.is_floating_point() else v for k, v in state.items()}


# --------------------------------------------------------------------------- cache keys
def test_file_identity_sees_content_at_either_end(tmp_path):
    from vanish.nodes.ops.file_identity import SAMPLE_BYTES, file_identity

    path = tmp_path / "w.bin"
    path.write_bytes(bytes(3 * SAMPLE_BYTES))
    base = file_identity(path)
    data = bytearray(3 * SAMPLE_BYTES)
    data[-1] = 1
    path.write_bytes(bytes(data))
    assert file_identity(path)[3] != base[3]
    data[-1], data[0] = 0, 1
    path.write_bytes(bytes(data))
    assert file_identity(path)[3] != base[3]


def test_sam2_cache_reloads_a_file_replaced_with_its_mtime_kept(tmp_path):
    state = {k: v.clone() for k, v in tiny_predictor().state_dict().items()}
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": state}, path)
    L.clear_cache()
    try:
        first = L.load_sam2(path, "fp32", CPU, image_size=IMAGE_SIZE)
        assert L.load_sam2(path, "fp32", CPU, image_size=IMAGE_SIZE) is first  # unchanged: reused
        replace_keeping_mtime(path, lambda p: torch.save({"model": shifted(state)}, p))
        second = L.load_sam2(path, "fp32", CPU, image_size=IMAGE_SIZE)
        assert second is not first
        key = "no_obj_embed_spatial"
        torch.testing.assert_close(second.predictor.state_dict()[key], state[key] + 0.5, rtol=0, atol=0)
    finally:
        L.clear_cache()


def test_sam2_loader_reruns_when_a_file_is_replaced_with_its_mtime_kept(comfy):
    _comfy.register_model_folder("sam2", L.MODEL_EXTENSIONS)
    path = comfy.models("sam2") / "sam2.1_hiera_tiny.pt"
    path.write_bytes(b"x" * 100)
    loader = NODE_CLASS_MAPPINGS["VanishSAM2ModelLoader"]
    first = loader.IS_CHANGED("sam2.1_hiera_tiny.pt")
    replace_keeping_mtime(path, lambda p: p.write_bytes(b"y" * 100))
    assert loader.IS_CHANGED("sam2.1_hiera_tiny.pt") != first


def test_propainter_cache_reloads_a_file_replaced_with_its_mtime_kept(comfy, monkeypatch):
    from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
    from vanish.propainter_core.generator import GeneratorConfig, build_generator
    from vanish.propainter_core.raft import RaftConfig, build_raft

    monkeypatch.setattr(inpainting, "_CACHE", {})
    _comfy.register_model_folder(inpainting.MODEL_FOLDER, inpainting.MODEL_EXTENSIONS)
    folder = comfy.models(inpainting.MODEL_FOLDER)
    torch.manual_seed(0)
    networks = {"raft": build_raft(RaftConfig()), "flow_completion": build_flow_completion(FlowCompletionConfig()),
                "generator": build_generator(GeneratorConfig())}
    for net, module in networks.items():
        torch.save(dict(module.state_dict()), folder / inpainting.OFFICIAL_FILES[net])
    names = [inpainting.OFFICIAL_FILES[n] for n in ("raft", "flow_completion", "generator")]
    loader = NODE_CLASS_MAPPINGS["VanishProPainterModelLoader"]()
    (first,) = loader.load("propainter", *names, "fp32", "cpu")
    (again,) = loader.load("propainter", *names, "fp32", "cpu")
    assert again is first
    state = networks["generator"].state_dict()
    replace_keeping_mtime(folder / "ProPainter.pth", lambda p: torch.save(shifted(state), p))
    (second,) = loader.load("propainter", *names, "fp32", "cpu")
    assert second is not first
    key = next(k for k, v in state.items() if v.is_floating_point())
    torch.testing.assert_close(second.managed.module.generator.state_dict()[key], state[key] + 0.5)


# --------------------------------------------------------------------------- standalone lookup
@pytest.mark.parametrize("name", ["../secret.pth", "sub/../../secret.pth", "/etc/secret.pth"])
def test_standalone_model_lookup_refuses_to_leave_the_models_folder(comfy, name):
    _comfy.register_model_folder("propainter", (".pth",))
    comfy.models("propainter")
    (comfy.base / "models" / "secret.pth").write_bytes(b"x")
    (comfy.base / "secret.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="outside the model folders"):
        _comfy.model_path("propainter", name)


def test_loaders_turn_a_path_outside_the_models_folder_into_a_clear_error(comfy):
    _comfy.register_model_folder("propainter", (".pth",))
    comfy.models("propainter")
    (comfy.base / "models" / "raft-things.pth").write_bytes(b"x")
    loader = NODE_CLASS_MAPPINGS["VanishProPainterModelLoader"]()
    with pytest.raises(VanishError, match=r"^ProPainter Model Loader: .*'\.\./raft-things\.pth'.*outside"):
        loader.load("propainter", "../raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth",
                    "fp32", "cpu")
    _comfy.register_model_folder("sam2", L.MODEL_EXTENSIONS)
    comfy.models("sam2")
    (comfy.base / "models" / "x.pt").write_bytes(b"x")
    with pytest.raises(VanishError, match=r"^SAM 2 Model Loader: input 'checkpoint' names '\.\./x\.pt', which points outside"):
        NODE_CLASS_MAPPINGS["VanishSAM2ModelLoader"]().load("../x.pt")


def test_a_normal_subfolder_still_works(comfy):
    _comfy.register_model_folder("propainter", (".pth",))
    (comfy.models("propainter") / "sub").mkdir()
    (comfy.models("propainter") / "sub" / "a.pth").write_bytes(b"x")
    assert _comfy.model_path("propainter", "sub/a.pth") == comfy.models("propainter") / "sub" / "a.pth"
    assert _comfy.model_path("propainter", "missing.pth") is None
