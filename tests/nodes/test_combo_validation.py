"""Every COMBO input of every node is checked when the node is called from a script or the API
(issue 11: SAM 2 Propagate with direction="sideways" returned all-zero masks without a word)."""
from __future__ import annotations

import pytest

from vanish import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from vanish.nodes import _validation
from vanish.nodes._errors import VanishError

CASES = [(node_id, name, choices)
         for node_id, cls in sorted(NODE_CLASS_MAPPINGS.items())
         for name, choices in _validation.combo_choices(
             cls, _validation.FILE_COMBOS.get(node_id, frozenset())).items()]


def test_every_node_is_checked_and_has_combos_to_check():
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        assert getattr(getattr(cls, cls.FUNCTION), "_vanish_combos_checked", False), node_id
    assert len(CASES) >= 13  # the pack's 13 non-file combos at the time of issue 11
    assert ("VanishSAM2Propagate", "direction", ["both", "forward", "backward"]) in CASES


def test_file_combos_name_real_inputs():
    for node_id, names in _validation.FILE_COMBOS.items():
        spec = NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
        inputs = {**spec.get("required", {}), **spec.get("optional", {})}
        assert names <= set(inputs), node_id


@pytest.mark.parametrize("node_id, name, choices", CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_unknown_combo_value_is_a_clear_error_before_anything_runs(comfy, node_id, name, choices):
    cls = NODE_CLASS_MAPPINGS[node_id]
    method = getattr(cls(), cls.FUNCTION)
    node = NODE_DISPLAY_NAME_MAPPINGS[node_id]
    for bad in ("sideways", choices[0].upper() if choices[0].upper() != choices[0] else "X", 1, None):
        with pytest.raises(VanishError) as caught:
            method(**{name: bad})  # nothing else given: the check comes first
        text = str(caught.value)
        assert text.startswith(f"{node}: input '{name}' is {bad!r}, which is not one of its choices")
        assert repr(choices[0]) in text and "\nFix: use one of" in text
    # every listed value passes the check (the call then fails on the missing inputs instead)
    for good in choices:
        try:
            method(**{name: good})
        except VanishError as exc:
            assert f"input '{name}' is {good!r}" not in str(exc)
        except Exception:  # noqa: BLE001 - missing inputs, as expected
            pass


def test_sam2_propagate_direction_from_a_script(comfy):
    cls = NODE_CLASS_MAPPINGS["VanishSAM2Propagate"]
    with pytest.raises(VanishError, match=r"^SAM 2 Propagate: input 'direction' is 'sideways', which is "
                       r"not one of its choices: 'both', 'forward', 'backward'\."):
        cls().propagate(None, None, None, direction="sideways")


def test_positional_values_are_checked_too(comfy):
    cls = NODE_CLASS_MAPPINGS["VanishSaveVideo"]
    with pytest.raises(VanishError, match=r"^Save Video: input 'format' is 'gif'"):
        cls().save("vanish/x", "gif", 19, 25.0)


def test_file_lists_are_left_to_the_node(comfy):
    """A file name not in the (on-disk) list gets the node's own 'does not exist' error."""
    cls = NODE_CLASS_MAPPINGS["VanishLoadVideoFrames"]
    with pytest.raises(VanishError, match=r"^Load Video Frames: input 'video' points to .*nothere\.mp4, "
                       r"which does not exist"):
        cls().load("nothere.mp4", 0, 0, 1, 0.0, 0, 0)
