"""The one bridge to ComfyUI: every ``comfy.*``, ``folder_paths`` and ``server`` import lives here.

Inside a running ComfyUI the functions below delegate to ComfyUI. Without it (unit tests, the
headless demo, scripts) a standalone fallback keeps the same behaviour on plain folders under
``VANISH_BASE_DIR`` (default: the current directory): ``input/``, ``output/``, ``temp/`` and
``models/<folder name>/``. Tests replace this module's functions with a fake
(``tests/fake_comfy.py``) that points at temporary folders.

Nothing else in the pack may import ComfyUI.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .ops.host_memory import available_ram

logger = logging.getLogger(__name__)

try:  # pragma: no cover - exercised only inside ComfyUI
    import folder_paths as _folder_paths  # type: ignore[import-not-found]

    import comfy.model_management as _mm  # type: ignore[import-not-found]
    import comfy.utils as _comfy_utils  # type: ignore[import-not-found]

    AVAILABLE = True
except ImportError:
    _folder_paths = None
    _mm = None
    _comfy_utils = None
    AVAILABLE = False


class Interrupted(Exception):
    """Raised by :func:`throw_if_interrupted` outside ComfyUI when a cancel was requested."""


# --------------------------------------------------------------------------- folders
def _base_dir() -> Path:
    return Path(os.environ.get("VANISH_BASE_DIR", os.getcwd()))


def input_directory() -> Path:
    """ComfyUI's input folder (uploads land here)."""
    if _folder_paths is not None:
        return Path(_folder_paths.get_input_directory())
    return _base_dir() / "input"


def output_directory() -> Path:
    """ComfyUI's output folder (saved results)."""
    if _folder_paths is not None:
        return Path(_folder_paths.get_output_directory())
    return _base_dir() / "output"


def temp_directory() -> Path:
    """ComfyUI's temp folder (previews; emptied by ComfyUI at start)."""
    if _folder_paths is not None:
        return Path(_folder_paths.get_temp_directory())
    return _base_dir() / "temp"


def annotated_path(name: str) -> Path:
    """Resolve an input widget value such as ``clip.mp4`` or ``clip.mp4 [output]``."""
    if _folder_paths is not None:
        return Path(_folder_paths.get_annotated_filepath(name))
    for tag, folder in (("[output]", output_directory()), ("[input]", input_directory()),
                        ("[temp]", temp_directory())):
        if name.endswith(" " + tag):
            return folder / name[: -len(tag) - 1]
    return input_directory() / name


def list_input_files(extensions: Iterable[str]) -> list[str]:
    """Files (recursively, as relative posix paths) in the input folder with one of ``extensions``."""
    root = input_directory()
    if not root.is_dir():
        return []
    exts = {e.lower().lstrip(".") for e in extensions}
    found = [p.relative_to(root).as_posix() for p in root.rglob("*")
             if p.is_file() and p.suffix.lower().lstrip(".") in exts]
    return sorted(found)


# --------------------------------------------------------------------------- models
_standalone_model_folders: dict[str, tuple[list[Path], set[str]]] = {}


def register_model_folder(name: str, extensions: Iterable[str]) -> None:
    """Make ``models/<name>`` a model folder, keeping every path the user already configured.

    ``extra_model_paths.yaml`` entries for ``name`` that ComfyUI read before us are kept; the
    default folder is only added when missing, and the extension set is only widened.
    """
    exts = {e if e.startswith(".") else "." + e for e in extensions}
    if _folder_paths is not None:
        default = os.path.join(_folder_paths.models_dir, name)
        registry = _folder_paths.folder_names_and_paths
        if name in registry:
            paths, known = registry[name]
            if default not in paths:
                paths.append(default)
            registry[name] = (paths, set(known) | exts)
        else:
            registry[name] = ([default], exts)
        return
    folders, known = _standalone_model_folders.get(name, ([], set()))
    default_path = _base_dir() / "models" / name
    if default_path not in folders:
        folders.append(default_path)
    _standalone_model_folders[name] = (folders, known | exts)


def model_folders(name: str) -> list[Path]:
    """Every folder searched for models of kind ``name``."""
    if _folder_paths is not None:
        return [Path(p) for p in _folder_paths.get_folder_paths(name)]
    return list(_standalone_model_folders.get(name, ([_base_dir() / "models" / name], set()))[0])


def list_models(name: str) -> list[str]:
    """Model files of kind ``name`` (relative names, as ComfyUI's combo widgets show them)."""
    if _folder_paths is not None:
        return list(_folder_paths.get_filename_list(name))
    folders, exts = _standalone_model_folders.get(name, ([_base_dir() / "models" / name], set()))
    found: list[str] = []
    for folder in folders:
        if folder.is_dir():
            found += [p.relative_to(folder).as_posix() for p in folder.rglob("*")
                      if p.is_file() and (not exts or p.suffix.lower() in exts)]
    return sorted(set(found))


def model_path(name: str, filename: str) -> Path | None:
    """Full path of a model file listed by :func:`list_models`, or None when it is not there.

    Raises:
        ValueError: ``filename`` is absolute or has a ``..`` part: it would leave the model
            folders (ComfyUI's lookup silently strips such parts; we refuse them, in both modes).
    """
    parts = filename.replace("\\", "/").split("/")
    if ".." in parts or os.path.isabs(filename) or filename.startswith(("/", "\\")):
        raise ValueError(f"{filename!r} points outside the model folders "
                         f"({', '.join(str(f) for f in model_folders(name))})")
    if _folder_paths is not None:
        found = _folder_paths.get_full_path(name, filename)
        return Path(found) if found else None
    for folder in model_folders(name):
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- saving
def save_path(filename_prefix: str, width: int = 0, height: int = 0) -> tuple[Path, str, int, str]:
    """ComfyUI's output naming: ``(folder, filename, counter, subfolder)`` for a prefix.

    The prefix may contain subfolders (``vanish/clip``) and ComfyUI's ``%date:…%`` tokens.
    A prefix that would leave the output folder raises ``ValueError``.
    """
    out = output_directory()
    if _folder_paths is not None:
        try:
            folder, filename, counter, subfolder, _ = _folder_paths.get_save_image_path(
                filename_prefix, str(out), width, height)
        except Exception as exc:  # ComfyUI raises a bare Exception for '..' prefixes
            raise ValueError(str(exc)) from exc
        return Path(folder), filename, int(counter), subfolder
    subfolder, filename = os.path.split(os.path.normpath(filename_prefix))
    folder = (out / subfolder).resolve()
    if os.path.commonpath([str(out.resolve()), str(folder)]) != str(out.resolve()):
        raise ValueError(f"saving to {folder} is outside the output folder {out}")
    pattern = re.compile(re.escape(filename) + r"_(\d+)_?")
    counters = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else [])
                if (m := pattern.match(p.name))]
    return folder, filename, max(counters, default=0) + 1, subfolder


# --------------------------------------------------------------------------- devices and memory
def torch_device() -> torch.device:
    """The device ComfyUI computes on (``--cpu`` respected); cuda/mps/cpu outside ComfyUI."""
    if _mm is not None:
        return _mm.get_torch_device()
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def offload_device() -> torch.device:
    """Where idle models wait (CPU unless ComfyUI keeps everything on the GPU)."""
    if _mm is not None:
        return _mm.unet_offload_device()
    return torch.device("cpu")


def free_memory(device: torch.device) -> int:
    """Bytes free for tensors on ``device`` (RAM for the CPU)."""
    if _mm is not None:
        return int(_mm.get_free_memory(device))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return available_ram()


def make_room(bytes_needed: int, device: torch.device) -> None:
    """Ask ComfyUI to unload other models until ``bytes_needed`` are free on ``device``."""
    if _mm is not None:
        _mm.free_memory(bytes_needed, device)


def soft_empty_cache() -> None:
    """Return cached accelerator memory (ComfyUI's own policy inside ComfyUI)."""
    if _mm is not None:
        _mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


class _PatcherHolder(torch.nn.Module):
    """Container given to ComfyUI's ModelPatcher instead of the model itself.

    ModelPatcher writes attributes such as ``.device`` on its model; SAM 2's predictor makes
    ``device`` a read-only property, so the patcher gets this holder and we keep the module.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.wrapped = module


class ManagedModel:
    """A torch module handed to ComfyUI's model management.

    Inside ComfyUI it is wrapped in ``comfy.model_patcher.ModelPatcher`` so ComfyUI can unload
    it when another model needs the memory; :meth:`load` moves it onto the compute device.
    Outside ComfyUI it simply moves the module.
    """

    def __init__(self, module: torch.nn.Module, load_device: torch.device,
                 offload: torch.device | None = None) -> None:
        self.module = module
        self.load_device = load_device
        self.offload_device = offload if offload is not None else offload_device()
        self._patcher: Any = None
        if _mm is not None:  # pragma: no cover - needs ComfyUI
            import comfy.model_patcher  # type: ignore[import-not-found]

            self._patcher = comfy.model_patcher.ModelPatcher(
                _PatcherHolder(module), load_device=load_device, offload_device=self.offload_device)

    def load(self) -> torch.nn.Module:
        """Make sure the module is on ``load_device`` and return it."""
        if self._patcher is not None:  # pragma: no cover - needs ComfyUI
            _mm.load_models_gpu([self._patcher])
            return self.module
        return self.module.to(self.load_device)

    def offload(self) -> None:
        """Move the module back to the offload device (CPU) after use."""
        if self._patcher is None:
            self.module.to(self.offload_device)


# --------------------------------------------------------------------------- progress and cancel
_cancel_requested = False


def request_cancel(value: bool = True) -> None:
    """Standalone only: make the next :func:`throw_if_interrupted` raise (used by tests/demo)."""
    global _cancel_requested
    _cancel_requested = value


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel."""
    if _mm is not None:
        _mm.throw_exception_if_processing_interrupted()
    elif _cancel_requested:
        raise Interrupted("processing was cancelled")


def is_interrupted() -> bool:
    """True when the user asked to cancel (without raising)."""
    if _mm is not None:
        return bool(_mm.processing_interrupted())
    return _cancel_requested


class Progress:
    """ComfyUI's progress bar for one node execution (silent outside ComfyUI)."""

    def __init__(self, total: int) -> None:
        self.total = max(int(total), 1)
        self.value = 0
        self._bar = _comfy_utils.ProgressBar(self.total) if _comfy_utils is not None else None

    def update(self, steps: int = 1) -> None:
        self.set(self.value + steps)

    def set(self, value: int) -> None:
        self.value = min(int(value), self.total)
        if self._bar is not None:
            self._bar.update_absolute(self.value, self.total)


def progress_callback(total: int) -> Callable[[int, int], None]:
    """A ``(done, total)`` callable for the core's progress hooks, driving one :class:`Progress`."""
    bar = Progress(total)

    def report(done: int, total_now: int) -> None:
        if total_now != bar.total:
            bar.total = max(int(total_now), 1)
        bar.set(done)

    return report


# --------------------------------------------------------------------------- server
def prompt_server_routes() -> Any | None:
    """``PromptServer.instance.routes`` inside a running ComfyUI server, else None."""
    try:  # pragma: no cover - needs ComfyUI's server
        from server import PromptServer  # type: ignore[import-not-found]
    except ImportError:
        return None
    instance = getattr(PromptServer, "instance", None)
    return None if instance is None else instance.routes


def web_responses() -> Any:
    """The web-response module ComfyUI's server is built on (aiohttp's ``web``), from ``server``.

    Route handlers build their responses with it; taking it from ComfyUI keeps the pack free of
    direct network-library imports.
    """
    import server  # type: ignore[import-not-found]  # pragma: no cover - needs ComfyUI's server

    return server.web  # pragma: no cover


def send_to_frontend(event: str, data: dict, node_id: str | None = None) -> None:
    """Send a websocket message to the frontend (no-op outside ComfyUI)."""
    try:  # pragma: no cover - needs ComfyUI's server
        from server import PromptServer  # type: ignore[import-not-found]
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is not None:
        instance.send_sync(event, data, getattr(instance, "client_id", None))
