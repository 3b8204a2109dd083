"""Checkpoint reading, strict loading with readable errors, identification and conversion."""
from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from parity_weights import load_manifest
from propainter_core.checkpoints import (
    CheckpointError,
    convert_to_safetensors,
    identify_checkpoint,
    load_weights,
    read_state_dict,
)
from propainter_core.raft import build_raft


@pytest.fixture(scope="module")
def raft_state(parity_checkpoints) -> dict[str, torch.Tensor]:
    return read_state_dict(parity_checkpoints["raft"])


def _loaded_raft(path) -> torch.nn.Module:
    model = build_raft()
    load_weights(model, path, network="raft")
    return model


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ------------------------------------------------------------------ the official RAFT file

def test_raft_keys_and_size_match_manifest(parity_checkpoints, raft_state):
    manifest = load_manifest("raft")
    model = _loaded_raft(parity_checkpoints["raft"])
    ours = model.state_dict()
    assert {"module." + k for k in ours} == {e["key"] for e in manifest["entries"]}
    assert len(ours) == manifest["num_entries"] == 179
    # the manifest counts each aliased tensor once, like parameters() + buffers() do
    floats = sum(t.numel() for t in [*model.parameters(), *model.buffers()] if t.is_floating_point())
    assert floats == manifest["num_float_values"] == 5260416
    for key, value in ours.items():  # every file tensor landed where its key says
        assert torch.equal(value, raft_state["module." + key]), key


def test_aliased_norm_entries_are_one_module(parity_checkpoints):
    model = _loaded_raft(parity_checkpoints["raft"])
    for layer in ("layer2", "layer3"):
        block = getattr(model.cnet, layer)[0]
        assert block.downsample[1] is block.norm3
    keys = model.state_dict().keys()
    assert "cnet.layer2.0.downsample.1.running_var" in keys
    assert "cnet.layer2.0.norm3.running_var" in keys


def test_wrapped_and_unprefixed_files_load_identically(parity_checkpoints, raft_state, tmp_path):
    reference = _loaded_raft(parity_checkpoints["raft"])
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": raft_state, "epoch": 3, "lr": 1e-4}, wrapped)
    _assert_same_weights(reference, _loaded_raft(wrapped))
    nested = tmp_path / "nested.pt"
    torch.save({"state_dict": {"params": raft_state}}, nested)
    _assert_same_weights(reference, _loaded_raft(nested))
    plain = tmp_path / "plain.pth"
    torch.save({k.removeprefix("module."): v for k, v in raft_state.items()}, plain)
    _assert_same_weights(reference, _loaded_raft(plain))


def test_convert_to_safetensors_round_trip(parity_checkpoints, raft_state, tmp_path):
    dst = convert_to_safetensors(parity_checkpoints["raft"], tmp_path / "raft.safetensors")
    stored = load_file(str(dst))
    assert stored.keys() == raft_state.keys()  # both alias names kept, prefix kept
    for key, value in raft_state.items():
        assert torch.equal(stored[key], value), key
    _assert_same_weights(_loaded_raft(parity_checkpoints["raft"]), _loaded_raft(dst))
    assert identify_checkpoint(stored) == "raft"
    renamed = tmp_path / "raft_renamed.pth"  # a safetensors file with a .pth name still reads
    renamed.write_bytes(dst.read_bytes())
    assert read_state_dict(renamed).keys() == raft_state.keys()


def test_convert_never_overwrites_without_permission(raft_state, tmp_path):
    src = tmp_path / "raft-things.pth"
    torch.save(raft_state, src)
    dst = tmp_path / "raft-things.safetensors"
    dst.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_to_safetensors(src)
    assert dst.read_bytes() == b"user data"
    assert convert_to_safetensors(src, overwrite=True) == dst
    assert len(load_file(str(dst))) == 179
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(CheckpointError, match="onto itself"):
        convert_to_safetensors(dst, dst, overwrite=True)


# ----------------------------------------------------------------------- wrong files

def _message(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("other", ["generator", "flow_completion"])
def test_other_propainter_checkpoint_as_raft(parity_checkpoints, other):
    path = parity_checkpoints[other]
    with pytest.raises(CheckpointError) as excinfo:
        load_weights(build_raft(), path, network="raft")
    text = _message(excinfo)
    assert str(path) in text
    assert "raft-things.pth" in text  # the network that was expected
    assert "179 key(s) missing from the file: fnet.conv1.weight" in text
    n_file = load_manifest(other)["num_entries"]
    assert f"{n_file} key(s) unexpected in the file" in text
    expected_kind = {"generator": "ProPainter.pth", "flow_completion": "recurrent_flow_completion.pth"}
    assert f"looks like a ProPainter" in text and expected_kind[other] in text


def test_truncated_file(parity_checkpoints, tmp_path):
    data = parity_checkpoints["raft"].read_bytes()
    cut = tmp_path / "raft-things.pth"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=re.escape(str(cut)) + ".*truncated"):
        load_weights(build_raft(), cut, network="raft")
    cut_st = tmp_path / "raft.safetensors"
    convert_to_safetensors(parity_checkpoints["raft"], cut_st)
    cut_st.write_bytes(cut_st.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match=re.escape(str(cut_st)) + ".*truncated"):
        read_state_dict(cut_st)


def test_one_key_renamed(raft_state, tmp_path):
    state = dict(raft_state)
    state["module.update_block.gru.convz9.weight"] = state.pop("module.update_block.gru.convz1.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as excinfo:
        load_weights(build_raft(), path, network="raft")
    text = _message(excinfo)
    assert str(path) in text
    assert "1 key(s) missing from the file: update_block.gru.convz1.weight" in text
    assert "1 key(s) unexpected in the file: update_block.gru.convz9.weight" in text
    assert "looks like a RAFT" in text


def test_one_tensor_with_wrong_shape(raft_state, tmp_path):
    state = dict(raft_state)
    state["module.update_block.flow_head.conv2.bias"] = torch.zeros(3)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as excinfo:
        load_weights(build_raft(), path, network="raft")
    text = _message(excinfo)
    assert str(path) in text
    assert "1 key(s) with the wrong shape: update_block.flow_head.conv2.bias (file [3], network [2])" in text
    assert "missing" not in text and "unexpected" not in text


def test_aliases_with_different_values_are_refused(raft_state, tmp_path):
    state = {k: v.clone() for k, v in raft_state.items()}
    state["module.cnet.layer3.0.downsample.1.weight"] += 1
    path = tmp_path / "alias.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="cnet.layer3.0.norm3.weight = cnet.layer3.0.downsample.1.weight"):
        load_weights(build_raft(), path, network="raft")


def test_unknown_and_foreign_files(tmp_path):
    sam = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(1),
           "sam_mask_decoder.iou_token.weight": torch.zeros(1)}
    sd = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
          "first_stage_model.decoder.conv_in.weight": torch.zeros(1)}
    assert identify_checkpoint(sam) == "sam2"
    assert identify_checkpoint(sd) == "stable_diffusion"
    unknown = {f"backbone.layer{i}.weight": torch.zeros(1) for i in range(8)}
    assert identify_checkpoint(unknown) is None
    torch.save({"model": sam}, tmp_path / "sam2_hiera_tiny.pt")
    with pytest.raises(CheckpointError, match="looks like a SAM 2"):
        load_weights(build_raft(), tmp_path / "sam2_hiera_tiny.pt", network="raft")
    torch.save(unknown, tmp_path / "mystery.pth")
    with pytest.raises(CheckpointError, match="first keys: backbone.layer0.weight, backbone.layer1"):
        load_weights(build_raft(), tmp_path / "mystery.pth", network="raft")


def test_identifies_the_three_networks(parity_checkpoints):
    for name, path in parity_checkpoints.items():
        assert identify_checkpoint(read_state_dict(path)) == name


# ----------------------------------------------------------------------- reading

def test_read_refuses_pickled_objects_and_non_checkpoints(tmp_path):
    import argparse

    path = tmp_path / "with_args.pth"
    torch.save({"weight": torch.ones(2), "args": argparse.Namespace(small=False)}, path)
    with pytest.raises(CheckpointError, match="weights_only=True.*argparse.Namespace"):
        read_state_dict(path)
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth"):
        read_state_dict(tmp_path / "notes.pth")
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a network weights file"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"epoch": 3}, tmp_path / "epoch.pth")
    with pytest.raises(CheckpointError, match="holds no tensors.*'epoch'"):
        read_state_dict(tmp_path / "epoch.pth")
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "missing.safetensors")


def test_bad_network_name(parity_checkpoints):
    with pytest.raises(ValueError, match="network must be one of"):
        load_weights(build_raft(), parity_checkpoints["raft"], network="rafts")  # type: ignore[arg-type]


def test_manifest_is_json_readable():  # guards the fixture's data source
    assert json.loads(json.dumps(load_manifest("raft")))["network"] == "raft"
