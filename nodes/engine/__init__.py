"""The streaming removal engine: a source clip in, the clip without the object out — ComfyUI-free.

One engine under every front door: the "Remove Object (streaming)" node, the command line and
the Ray workers all call :func:`run_removal` (or :func:`run_batch`). It imports ``nodes/ops`` and
``propainter_core`` only, never ComfyUI (``nodes/_comfy.py`` is reached only through SAM 2's
session module, whose standalone side needs no ComfyUI).

Usage::

    from vanish.nodes import engine          # inside the pack: from ..nodes import engine
    settings = engine.RemovalSettings(
        inpaint=engine.RunSettings(backend="flow_fill", crop="auto"),   # ProPainter Inpaint's options
        mask=engine.MaskOptions(grow=8, feather=2.0, temporal_sigma=1.0),  # Mask Dilate & Blur's
        output=engine.OutputOptions(format="h264-mp4", crf=19, audio=True))  # Save Video's
    result = engine.run_removal("clip.mp4", "out/clip_removed.mp4", settings, masks="mask.mp4",
                                work_dir="~/.cache/vanish", progress=bar, should_cancel=pressed)
    # or: prompts=engine.PromptSet.from_json(text), sam2=sam2_loader.load_sam2(path)
    # ProPainter: settings.inpaint.backend="propainter", inpaint_models=propainter_core.load_models(...)

Public API
----------
``run_removal(source, output, settings=None, *, prompts=None, masks=None, sam2=None,
inpaint_models=None, device="cpu", work_dir=None, ray_address=None, progress=None,
should_cancel=None, preview_frames=8, overwrite=False, keep_work=False, mask_threshold=None,
if_taken=None) -> RemovalResult``

* ``source``: a path (video file, folder of numbered images, one image), a uint8
  ``[T, H, W, 3]`` array, an IMAGE float tensor, or a :class:`FrameSource` from
  :func:`open_source` (``open_source(spec, fps=...)`` sets the rate of frames in memory).
* exactly one of ``masks`` (a mask video / folder / one image for every frame, a ``[T|1, H, W]``
  array, or a :class:`MaskSource`; white or alpha = remove; ``MaskOptions.threshold`` or
  ``mask_threshold`` as Load Video Frames' ``mask_threshold``) and ``prompts`` (a
  ``PromptSet``, the editor's JSON parsed; coordinates in the clip's pixels or in its
  ``image_size``) with ``sam2`` (a ``sam2_loader.SAM2Handle``).
* ``inpaint_models``: ``propainter_core.ProPainterModels`` for ``backend="propainter"``; None for
  flow_fill. ``device``: where ProPainter runs (flow_fill always runs on the CPU).
* ``output``: a NEW file in an existing, writable folder (``overwrite=True`` replaces a file).
  Written under a hidden temporary name beside it (``.<name>.vanish-<key>.partial``) and renamed
  at the end, so the final name never holds a half-written file. If the name was taken while the
  job ran, ``if_taken(name)`` (when given) names the next one to try (the streaming node: its next
  free counter) and ``RemovalResult.output`` says where it went; without it the job fails rather
  than replace anything.
* ``work_dir``: the resume folder root. The job's folder is ``work_dir/<key>``, ``key`` a hash of
  the source (path, size, mtime, a hash of its first and last MiB), the masks or prompts, the
  mask and inpaint settings, ``window``/``context``, the model weights and the engine version
  (not the output format). It holds ``segments/segment_<index>_<start>_<stop>.npz`` (each
  finished segment, written atomically) and ``masks/objects.bits`` (SAM 2's masks, one bit per
  pixel and object). A job killed at any point, SIGKILL included, and started again with the same
  ``work_dir`` reuses every finished segment and writes the same bytes. The folder is removed
  after success unless ``keep_work=True``; ``work_dir=None`` uses a temporary folder (no resume).
* ``ray_address``: None runs in-process. ``"local"`` starts (or joins) a local Ray; any other
  value joins that cluster (``ray.init(address=...)``); an already initialised Ray is reused.
  Segments (and SAM 2 tracking, one task per clip) become Ray tasks, with ``num_gpus=1`` when the
  job runs on CUDA (``device="cuda"``; SAM 2: its handle's device) and the cluster has GPUs
  (a CPU job stays on CPUs, so its output equals the local CPU run's), retried ``MAX_RETRIES`` times when a worker dies; the driver stores and
  stitches them with the local code, so the output equals the local one byte for byte. Workers
  import the pack from the driver's path (one machine, or the pack at the same path on a shared
  file system). The engine does not read ``RAY_ADDRESS`` by itself (Ray sets it inside its own
  workers); front doors that honour it call ``ray_backend.ray_address_from_env()``.
* ``progress(done, total)``: over the whole job (tracking, inpainting, encoding), monotonic,
  ends with ``done == total``. ``should_cancel()``: polled at least once per frame (decode,
  tracking, flow_fill) or network chunk (ProPainter) and every 0.2 s while waiting on Ray; True
  raises :class:`Cancelled` (partial output removed, work folder kept).

``RemovalResult``: ``output`` (Path), ``frames``, ``segments_run``, ``segments_reused``,
``preview`` (uint8 ``[k, h, w, 3]``, long side <= 256, ``preview_frames`` evenly spaced output
frames), ``work_dir`` (when kept), ``notes`` (the inpaint runner's warnings).

``run_batch(jobs: list[BatchJob], *, sam2, inpaint_models, device, work_dir, ray_address,
progress, should_cancel, overwrite) -> list[RemovalResult | EngineError]``: clips one after the
other, or one Ray task per clip; a clip's bad input is returned in its place, the rest go on.
``BatchJob(source, output, masks=None, prompts=None, settings=RemovalSettings())``.

Errors: :class:`EngineError` (a ``VanishError``/``ValueError``; ``.input_name``, ``.problem``,
``.fix``; its text starts "Vanish engine: input '<name>' ..." and ends with "Fix: ..."): missing
or unreadable source or masks, no video stream, masks or prompts that do not fit the clip, an
existing output, a missing or unwritable output folder, a full disk while writing (the
temporary output removed, the user's files untouched). :class:`Cancelled` on cancel.

How it streams
--------------
1. Source: decoded window by window (:mod:`.sources`; a video keeps one open decoder and its
   frame timestamps; other reads seek to the key frame before). Pixels are exactly Load Video
   Frames'.
2. Masks (:mod:`.masks`): a mask file is read per window; SAM 2 (:mod:`.tracking`) runs the
   Propagate node's forward and backward passes over lazily decoded frames and writes a
   bit-packed store on disk. Mask Dilate & Blur runs per window with the temporal blur's
   context frames (:func:`.masks.refine_window`; extra mask stages slot in there).
3. Inpainting (:mod:`.segments`): the clip is cut by ``propainter_core``'s ``plan_segments``
   (``window`` owned frames, default the backend's segment length: ProPainter
   ``subvideo_length`` 80, flow_fill 60; ``context`` frames each side, default ProPainter 10 and
   flow_fill 30: what the backend's own streamed run reads; flow_fill with the default window
   takes a clip of up to 120 frames as one segment). Each segment runs
   ``inpaint_runner.run_inpaint`` over its span (crop "auto" crops to that span's mask extent),
   is composited into its owned frames with ``composite_ops`` (Composite Frames' arithmetic),
   and keeps only the rectangle its soft mask touches.
   Versus the in-RAM node graph: outside the mask always bit for bit. Inside, a clip that fits
   one span (and every segment whose span starts at frame 0) is equal too (tested for both
   backends). ProPainter's later segments read the same spans as the node's own streamed run
   and should differ only by float noise (the node hands RAFT flows from one segment to the
   next, here they are estimated again; not measured: too slow on this CPU); flow_fill's later segments restart what it carries along the flow
   through the whole clip (the fill it invents for never-seen pixels, its recursive blend) at
   their first context frame, so their fill inside the mask differs (tests: mean < 16 levels).
4. Encoding (:mod:`.output`): the existing encoder pulls frames in order; each is the re-decoded
   original with its segment's rectangle pasted in, so pixels outside the mask are the source's
   decoded pixels, bit for bit. The source's sound is passed through. In-process, a segment is
   computed when the encoder reaches it.

Host memory is bounded by one segment: its span's uint8 frames and bool hard masks, the
backend's working set at the processing size, the owned frames' float soft masks and fill (the
runner scales back only the owned frames, ``run_inpaint(..., keep=...)``), plus one encoder
window of uint8 frames, whatever the clip's length. Measured (flow_fill, 96x72, default
settings, load ~27 on 2 cores): the run adds 103 MiB to the process's peak RSS for 150 frames
and 105 MiB for 600 frames. The source's audio
track is decoded whole (float32: about 23 MB per minute of stereo at 48 kHz).
"""
from __future__ import annotations

from ..ops.inpaint_runner import RunSettings
from ..ops.sam2_prompts import PromptSet
from .batch import BatchJob, run_batch
from .errors import Cancelled, EngineError
from .masks import MaskSource, MaskStore, open_mask_source
from .ray_backend import ray_address_from_env
from .run import run_removal
from .segments import Segment, SegmentOutput, run_segment, segment_plan
from .settings import MaskOptions, OutputOptions, RemovalResult, RemovalSettings
from .sources import FrameSource, open_source

__all__ = [
    "BatchJob", "Cancelled", "EngineError", "FrameSource", "MaskOptions", "MaskSource", "MaskStore",
    "OutputOptions", "PromptSet", "RemovalResult", "RemovalSettings", "RunSettings", "Segment",
    "SegmentOutput", "open_mask_source", "open_source", "ray_address_from_env", "run_batch", "run_removal",
    "run_segment", "segment_plan",
]
