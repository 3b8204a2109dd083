"""Our own pure-PyTorch ProPainter: RAFT, recurrent flow completion and the InpaintGenerator.

Imports torch and safetensors only; never ComfyUI, cv2 or sam2. The public API
(``load_models``, ``inpaint``) is added by ``pipeline``.
"""
