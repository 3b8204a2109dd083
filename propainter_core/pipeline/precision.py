"""Precision policy: RAFT always fp32; flow completion and generator in half precision on CUDA
only when asked; CPU always fp32.

parity: inference_propainter.py:219-222 and 311-337. The script computes flows in fp32, then
casts frames, masks, flows and the two other networks to fp16 when ``--fp16`` is given, and
silently ignores ``--fp16`` on the CPU. We refuse half precision on the CPU with a clear error
instead (CPU half kernels are slow or missing, and a silent switch hides the user's mistake).
"""
from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InpaintInputError

logger = logging.getLogger(__name__)

#: RAFT runs in fp32 whatever is asked (parity: inference_propainter.py:311 "use fp32 for RAFT").
FLOW_DTYPE = torch.float32
#: Dtypes the flow-completion network and the generator may run in.
NETWORK_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Precision:
    """Dtypes one pipeline run uses.

    Attributes:
        flow: RAFT's weights and inputs (always float32).
        network: Flow completion, image propagation, generator and the tensors fed to them.
    """

    flow: torch.dtype
    network: torch.dtype

    @property
    def is_half(self) -> bool:
        return self.network != torch.float32


def check_model_dtype(device: torch.device, dtype: torch.dtype) -> None:
    """Check that networks may be loaded in ``dtype`` on ``device``.

    Raises:
        InpaintInputError: an unsupported dtype, or half precision on a non-CUDA device.
    """
    if dtype not in NETWORK_DTYPES:
        raise InpaintInputError(f"dtype {dtype} is not supported; use torch.float32, "
                                "torch.float16 or torch.bfloat16.")
    if dtype != torch.float32 and device.type != "cuda":
        raise InpaintInputError(f"{dtype} needs a CUDA device, but the device is {device}; "
                                "use dtype=torch.float32 on the CPU.")


def resolve_precision(device: torch.device, model_dtype: torch.dtype, fp16: bool) -> Precision:
    """The dtypes of one run.

    Args:
        device: Where the networks are.
        model_dtype: The dtype the flow-completion network and generator were loaded in.
        fp16: The official ``--fp16`` switch: run those two networks in float16. Models
            already loaded in float16 or bfloat16 run in their own dtype either way.

    Raises:
        InpaintInputError: ``fp16`` (or half weights) on a non-CUDA device.
    """
    check_model_dtype(device, model_dtype)
    if fp16 and device.type != "cuda":
        raise InpaintInputError(f"fp16=True needs a CUDA device, but the models are on {device}; "
                                "use fp16=False on the CPU (half precision is CUDA-only here).")
    network = model_dtype
    if fp16 and model_dtype == torch.float32:
        network = torch.float16
    return Precision(flow=FLOW_DTYPE, network=network)


def module_in_dtype(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``module`` itself when its floating parameters are ``dtype``, else a converted copy.

    The caller's networks are never cast in place (the official script's ``model.half()``
    would leave the caller holding half weights). The copy lives for one run only; load the
    models in the wanted dtype to avoid it.
    """
    floating = [p for p in module.parameters() if p.is_floating_point()]
    if all(p.dtype == dtype for p in floating):
        return module
    return copy.deepcopy(module).to(dtype)


def _cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX); else it emulates
    it, slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bf16_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """The opt-in bfloat16 CPU mode: autocast every network's convolutions and matrix products to
    bfloat16 (the other operations stay float32).

    Not the official arithmetic and never the default: on the parity clip (16 bmx-trees frames,
    224x128, parity weights) it changed 4.6 % of the output's uint8 values, 1.0 % by more than one
    level, at most 5 levels, all inside the hole (pixels outside are the input's as always), for
    1.85x less CPU time on an AVX512-BF16 CPU (bench/RESULTS.md, issue 14 session 4).

    Args:
        device: Where the networks are.
        enabled: The caller's ``cpu_bf16`` switch.

    Returns:
        ``torch.autocast("cpu", dtype=torch.bfloat16)``, or a no-op context (float32 as usual)
        when not enabled, when the networks are not on the CPU or when the CPU has no native
        bfloat16; the last two log one warning line.
    """
    if not enabled:
        return contextlib.nullcontext()
    if device.type != "cpu":
        logger.warning("cpu_bf16 applies to the CPU only; the networks are on %s, so they run in "
                       "their own precision", device)
        return contextlib.nullcontext()
    if not _cpu_has_bf16():
        logger.warning("cpu_bf16 asked for, but this CPU has no native bfloat16 (AVX512-BF16 or AMX), "
                       "where it would be slower than float32; running in float32")
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
