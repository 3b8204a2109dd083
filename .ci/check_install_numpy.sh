#!/usr/bin/env bash
# Install risk check (issue 11): installing requirements.txt must never move a user's numpy.
#
# Builds two fresh venvs outside the repo, each with torch==2.13.0 (pinned by a constraints file,
# as .ci/setup does) and a given numpy preinstalled -- 1.26.4 (ComfyUI installs that never moved to
# numpy 2) and the registry's current numpy -- then installs the requirements the way the README
# says (rf-sam-2 with --no-deps, as .ci/setup does) and checks that numpy's version is unchanged
# that cv2, kornia, av, safetensors and sam2 import and run a small call each, and that the
# headless demo (every node of the removal graph) runs on the versions installed.
# Needs the package registry (not part of the fast test suite). Results: bench/RESULTS.md.
#
#   bash .ci/check_install_numpy.sh [numpy spec ...]     # default: "numpy==1.26.4" "numpy"
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/vanish_install_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "torch==2.13.0" > "$WORK/constraints.txt"
grep -v '^rf-sam-2' requirements.txt > "$WORK/requirements-no-sam2.txt"
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=("numpy==1.26.4" "numpy")
status=0
# pip's notes about this machine's extra local indexes and rf-sam-2's undeclared torchvision
# (ComfyUI always has it; .ci/setup explains) are noise here.
pip_quiet() { "$@" 2> >(grep -vE "^WARNING: Location|dependency resolver does not|requires torchvision" >&2); }
for spec in "${specs[@]}"; do
  venv="$WORK/venv_$(echo "$spec" | tr -c 'a-zA-Z0-9' '_')"
  "$PY" -m venv "$venv"
  pip=(pip_quiet "$venv/bin/python" -m pip install -q -c "$WORK/constraints.txt")
  "${pip[@]}" torch==2.13.0 "$spec"
  before=$("$venv/bin/python" -c "import numpy; print(numpy.__version__)")
  "${pip[@]}" --no-deps "$(grep '^rf-sam-2' requirements.txt)"
  "${pip[@]}" -r "$WORK/requirements-no-sam2.txt"
  after=$("$venv/bin/python" -c "import numpy; print(numpy.__version__)")
  (cd "$WORK" && "$venv/bin/python" - <<'EOF')
import av, cv2, kornia, numpy as np, safetensors, sam2, torch
a = np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, np.roll(a, 2, 1), None)
blur = kornia.filters.gaussian_blur2d(torch.rand(1, 1, 16, 16), (5, 5), (1.0, 1.0))
print(f"  imports ok: cv2 {cv2.__version__}, kornia {kornia.__version__}, av {av.__version__}, "
      f"torch {torch.__version__}; DIS flow {flow.shape}, blur {tuple(blur.shape)}")
EOF
  # The pack itself on these versions: the headless demo runs every node (cv2 flow, PyAV, torch).
  "$venv/bin/python" bench/demo_remove.py --frames 4 --size 64x48 --out "$venv/demo" | sed 's/^/  /'
  if [ "$before" = "$after" ]; then
    echo "OK   $spec: numpy $before -> $after (unchanged)"
  else
    echo "FAIL $spec: numpy $before -> $after (moved)"; status=1
  fi
  "$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(numpy|opencv-python-headless|kornia|av|safetensors|hydra-core|rf-sam-2|torch) ' | sed 's/^/  /'
done
exit $status
