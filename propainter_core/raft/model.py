"""The RAFT network: encoders + correlation pyramid + recurrent update, in test mode only."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import RaftConfig
from .correlation import CorrelationPyramid
from .encoders import ConvEncoder
from .update import UpdateBlock


class RAFT(nn.Module):
    """RAFT optical flow (Teed & Deng 2020) as ProPainter uses it: full model, float32.

    The network receives its parts; :func:`build_raft` assembles the official ones. The
    attribute names ``fnet``, ``cnet`` and ``update_block`` are the checkpoint's key prefixes
    (``raft-things.pth`` adds ``module.``, which :func:`~propainter_core.checkpoints.load_weights`
    strips).

    Args:
        feature_encoder: Matching-feature encoder ``[N, 3, H, W] -> [N, C, H/8, W/8]``.
        context_encoder: Context encoder ``[N, 3, H, W] -> [N, hidden_dim + context_dim, H/8, W/8]``.
        corr_block: Builds and samples the correlation pyramid.
        update_block: One recurrent refinement step plus the upsampling weights.
        hidden_dim: Channels of the GRU state (first part of the context output, tanh).
        context_dim: Channels of the context input (second part, ReLU).
        upsample_factor: Image to flow-grid ratio (8).
        min_size: Smallest accepted image height and width (128, see :class:`RaftConfig`).
    """

    def __init__(self, *, feature_encoder: nn.Module, context_encoder: nn.Module,
                 corr_block: CorrelationPyramid, update_block: UpdateBlock, hidden_dim: int = 128,
                 context_dim: int = 128, upsample_factor: int = 8, min_size: int = 128) -> None:
        super().__init__()
        self.fnet = feature_encoder
        self.cnet = context_encoder
        self.corr_block = corr_block
        self.update_block = update_block
        self.hidden_dim = hidden_dim
        self.context_dim = context_dim
        self.upsample_factor = upsample_factor
        self.min_size = min_size

    def check_image_size(self, height: int, width: int) -> None:
        """Raise ``ValueError`` unless ``height`` and ``width`` are multiples of 8 and >= 128.

        parity: the official code accepts smaller sizes, but its coarsest correlation level is
        then one pixel wide, ``RAFT/utils/utils.py:bilinear_sampler`` divides by ``W - 1 = 0``
        and the flows come out NaN (see the parity README). We refuse instead.
        """
        f = self.upsample_factor
        problems = []
        if height % f or width % f:
            problems.append(f"both sides must be multiples of {f}")
        if height < self.min_size or width < self.min_size:
            problems.append(f"both sides must be at least {self.min_size} pixels")
        if problems:
            raise ValueError(
                f"RAFT cannot estimate flow on {width}x{height} (width x height) frames: "
                f"{' and '.join(problems)}. Pad or resize the frames first.")

    def encode_features(self, images: torch.Tensor) -> torch.Tensor:
        """Matching features ``[N, C, H/8, W/8]`` of ``images [N, 3, H, W]`` in [-1, 1]."""
        return self.fnet(images).float()

    def encode_context(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial GRU state ``[N, hidden_dim, h, w]`` (tanh) and context ``[N, context_dim, h, w]`` (ReLU)."""
        hidden, context = torch.split(self.cnet(images), [self.hidden_dim, self.context_dim], dim=1)
        return torch.tanh(hidden), torch.relu(context)

    def refine(self, features1: torch.Tensor, features2: torch.Tensor, hidden: torch.Tensor,
               context: torch.Tensor, *, iters: int) -> torch.Tensor:
        """Run ``iters`` refinement steps from zero flow and return the upsampled final flow.

        Args:
            features1: ``[B, C, h, w]`` matching features of the first images.
            features2: ``[B, C, h, w]`` matching features of the second images.
            hidden: ``[B, hidden_dim, h, w]`` initial GRU state from the first images.
            context: ``[B, context_dim, h, w]`` context features from the first images.
            iters: Refinement steps, >= 1.

        Returns:
            ``[B, 2, h * 8, w * 8]`` flow from image 1 to image 2 in image pixels (x, y).
        """
        check_iterations(iters)
        pyramid = self.corr_block.build(features1, features2)
        batch, _, height, width = features1.shape
        coords0 = pixel_grid(batch, height, width, device=features1.device, dtype=features1.dtype)
        coords1 = coords0.clone()
        # Without autograd the update runs with the context's share of the GRU precomputed
        # (same numbers up to float summation order); with it, the official form.
        fast = not torch.is_grad_enabled()
        terms = self.update_block.context_terms(context) if fast else None
        for _ in range(iters):
            corr = self.corr_block.lookup(pyramid, coords1)
            if fast:
                hidden, delta_flow = self.update_block.step(hidden, terms, corr, coords1 - coords0)
            else:
                hidden, delta_flow = self.update_block(hidden, context, corr, coords1 - coords0)
            coords1 = coords1 + delta_flow
        weights = self.update_block.upsample_weights(hidden)
        return self.upsample_flow(coords1 - coords0, weights)

    def upsample_flow(self, flow: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Convex upsampling: each fine pixel is a softmax-weighted mix of 3x3 coarse flows.

        Args:
            flow: ``[B, 2, h, w]`` flow on the 1/8 grid (flow-grid pixels).
            weights: ``[B, 9 * f^2, h, w]`` mixing logits, ``f`` = upsample factor.

        Returns:
            ``[B, 2, h * f, w * f]`` flow in image pixels.
        """
        batch, _, height, width = flow.shape
        f = self.upsample_factor
        weights = weights.view(batch, 1, 9, f, f, height, width)  # [B, 1, 9, f, f, h, w]
        weights = torch.softmax(weights, dim=2)
        patches = F.unfold(f * flow, [3, 3], padding=1)  # [B, 2*9, h*w]
        patches = patches.view(batch, 2, 9, 1, 1, height, width)  # [B, 2, 9, 1, 1, h, w]
        fine = torch.sum(weights * patches, dim=2)  # [B, 2, f, f, h, w]
        fine = fine.permute(0, 1, 4, 2, 5, 3)  # [B, 2, h, f, w, f]
        return fine.reshape(batch, 2, f * height, f * width)  # [B, 2, h*f, w*f]

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, *, iters: int = 20) -> torch.Tensor:
        """Flow from ``image1`` to ``image2`` (official test mode: the upsampled final flow).

        Args:
            image1: ``[B, 3, H, W]`` float in [-1, 1]; H, W multiples of 8 and >= 128.
            image2: ``[B, 3, H, W]`` float in [-1, 1].
            iters: Refinement steps (ProPainter uses 20).

        Returns:
            ``[B, 2, H, W]`` flow in pixels, channel 0 = x, channel 1 = y.
        """
        if image1.ndim != 4 or image1.shape[1] != 3 or image1.shape != image2.shape:
            raise ValueError(
                f"expected two [B, 3, H, W] images of the same shape, got "
                f"{tuple(image1.shape)} and {tuple(image2.shape)}")
        self.check_image_size(image1.shape[-2], image1.shape[-1])
        check_iterations(iters)
        batch = image1.shape[0]
        features = self.encode_features(torch.cat([image1, image2], dim=0))  # [2B, C, h, w]
        hidden, context = self.encode_context(image1)
        return self.refine(features[:batch], features[batch:], hidden, context, iters=iters)


def check_iterations(iters: int) -> None:
    """Raise ``ValueError`` unless ``iters`` is a positive int (the flow comes from the last step)."""
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an integer of at least 1, got {iters!r}")


def pixel_grid(batch: int, height: int, width: int, *, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel positions ``[batch, 2, height, width]``: channel 0 = x (column), 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys], dim=0)[None].repeat(batch, 1, 1, 1)  # [batch, 2, h, w]


def build_raft(config: RaftConfig | None = None) -> RAFT:
    """The official full RAFT architecture, randomly initialised, in eval mode.

    Load the weights with ``load_weights(raft, path, network="raft")``.
    """
    config = RaftConfig() if config is None else config
    model = RAFT(
        feature_encoder=ConvEncoder(out_channels=config.feature_dim, norm="instance",
                                    widths=config.encoder_widths),
        context_encoder=ConvEncoder(out_channels=config.hidden_dim + config.context_dim,
                                    norm="batch", widths=config.encoder_widths),
        corr_block=CorrelationPyramid(levels=config.corr_levels, radius=config.corr_radius),
        update_block=UpdateBlock(corr_channels=config.corr_channels, hidden_dim=config.hidden_dim,
                                 context_dim=config.context_dim,
                                 upsample_factor=config.upsample_factor),
        hidden_dim=config.hidden_dim,
        context_dim=config.context_dim,
        upsample_factor=config.upsample_factor,
        min_size=config.min_size,
    )
    return model.eval()
