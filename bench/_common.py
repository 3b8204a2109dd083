"""What every bench script shares: the header (hardware, commit, date) and fresh-process runs.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and they import
``from _common import ...``. Nothing here starts an external program: the commit is read from the
``.git`` folder itself, and a measured case that needs its own process (peak RSS per case) runs
through ``multiprocessing`` with the ``spawn`` start method, i.e. a fresh interpreter.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import platform
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def import_pack(root: Path | str | None = None):
    """Import the pack the way ComfyUI does (as a package named ``vanish`` after its folder), and
    return it; later imports of ``vanish.…`` then work without ComfyUI.

    Args:
        root: The checkout to import (default: the one this bench folder is in), e.g. another
            commit's worktree that a bench times against this one, in a process of its own.
    """
    import importlib.util
    import sys

    root = ROOT if root is None else Path(root).resolve()
    spec = importlib.util.spec_from_file_location("vanish", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["vanish"] = pack
    spec.loader.exec_module(pack)
    return pack


def _git_dir(root: Path) -> Path | None:
    """The repository's git folder: ``.git`` itself, or where a ``.git`` file points (worktrees)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            target = Path(text[len("gitdir:"):].strip())
            return target if target.is_absolute() else (root / target).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    """Object id of ``ref`` (e.g. ``refs/heads/main``): loose ref file first, then ``packed-refs``."""
    common = git_dir
    if (git_dir / "commondir").is_file():  # a linked worktree keeps branches in the main repository
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for folder in (git_dir, common):
        loose = folder / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith(("#", "^")) and parts[1] == ref:
                return parts[0]
    return None


def git_commit(root: Path | str = ROOT, length: int = 7) -> str:
    """Short id of the checked-out commit, read from ``.git`` directly; ``"unknown"`` outside a checkout.

    Args:
        root: The repository root (the folder holding ``.git``).
        length: Hex digits to keep (7, like ``git rev-parse --short``).
    """
    try:
        git_dir = _git_dir(Path(root))
        if git_dir is None:
            return "unknown"
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        sha = _resolve_ref(git_dir, head[len("ref:"):].strip()) if head.startswith("ref:") else head
    except OSError:
        return "unknown"
    if not sha or any(c not in "0123456789abcdef" for c in sha.lower()):
        return "unknown"
    return sha[:length]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware(*, device: Any = None, threads: int | None = None, with_torch: bool = True) -> str:
    """One line: CPU, cores, torch version and threads, GPU (for a CUDA device), load average.

    Args:
        device: The torch device the bench runs on; a CUDA device adds the GPU's name.
        threads: Threads to report when the measured work sets its own (e.g. in a child process);
            default ``torch.get_num_threads()``.
        with_torch: False for scripts that never import torch (it is then left unimported).
    """
    parts = [cpu_model(), f"{os.cpu_count()} cores"]
    if with_torch:
        import torch

        parts.append(f"torch {torch.__version__}, "
                     f"{threads if threads is not None else torch.get_num_threads()} threads")
        if device is not None and torch.device(device).type == "cuda":
            parts.append(f"GPU {torch.cuda.get_device_name(torch.device(device))}")
    parts.append(f"python {platform.python_version()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts.append(f"load average {load:.2f}")
    return ", ".join(parts)


def header(title: str, *, device: Any = None, threads: int | None = None, with_torch: bool = True,
           software: str = "") -> str:
    """The lines every bench prints first: title, hardware, commit and UTC date.

    Args:
        title: The script's name or what it measures.
        device, threads, with_torch: See ``hardware``.
        software: Extra versions worth recording (e.g. ``"opencv 4.10, av 14.0"``).
    """
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [title, f"hardware: {hardware(device=device, threads=threads, with_torch=with_torch)}"]
    if software:
        lines.append(f"software: {software}")
    lines.append(f"commit:   {git_commit()}, {now}")
    return "\n".join(lines)


def _child_entry(connection, function: Callable[..., Any], args: tuple, log_path: str) -> None:
    """Runs in the spawned interpreter: output to a log file, the result (or error) back through the pipe."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)  # hide the case's own output (progress bars, warnings) like a captured child
    os.dup2(log, 2)
    try:
        connection.send(("ok", function(*args)))
    except BaseException:  # noqa: BLE001 - whatever failed is reported by the parent
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def run_in_fresh_process(function: Callable[..., Any], *args: Any, env: dict[str, str] | None = None) -> Any:
    """``function(*args)`` in a new interpreter (``spawn``), so its peak memory is its own.

    ``function`` must be defined at module level (the child imports it by name). ``env`` is set in
    ``os.environ`` while the child starts, so it is in the child's environment from its first
    instruction (glibc reads ``MALLOC_*`` variables before Python runs), then restored here.

    Raises:
        SystemExit: With the child's traceback and the tail of its output when it failed.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    with tempfile.TemporaryDirectory() as folder:
        log_path = str(Path(folder) / "child.log")
        process = context.Process(target=_child_entry, args=(send, function, args, log_path))
        saved = {key: os.environ.get(key) for key in env or {}}
        os.environ.update(env or {})
        try:
            process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        send.close()
        try:
            status, payload = receive.recv()
        except EOFError:
            status, payload = "error", "the child process ended without a result"
        process.join()
        if status != "ok":
            payload += f" (exit code {process.exitcode})"
        if status != "ok":
            output = Path(log_path).read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"{getattr(function, '__name__', function)}{args} failed:\n{payload}\n{output}")
    return payload
