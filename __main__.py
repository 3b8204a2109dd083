"""``python <pack folder> ...``: the command line (``nodes/cli.py``) without ComfyUI.

The pack is a package only when imported under a name (ComfyUI names it after its folder), so
this bootstrap imports it as ``vanish`` first, the way ``bench/_common.py`` does, then runs the
command line. The ``./vanish`` launcher calls this file.
"""
import importlib.util
import sys
from pathlib import Path


def _main() -> int:
    root = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == root:
        sys.path.pop(0)  # the pack's own folder must not shadow installed modules (e.g. `nodes`)
    spec = importlib.util.spec_from_file_location("vanish", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["vanish"] = pack
    spec.loader.exec_module(pack)
    from vanish.nodes.cli import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    try:
        sys.exit(_main())
    except KeyboardInterrupt:  # Ctrl-C while Python and torch were still importing
        print("vanish: stopped by Ctrl-C.", file=sys.stderr)
        sys.exit(130)
