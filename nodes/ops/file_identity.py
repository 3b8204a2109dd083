"""What identifies a model file for the loader caches: path, size, mtime and a content sample.

Path and modification time alone serve the old weights after a replacement that keeps the time
(``cp -p``, ``rsync -t``, unpacking a tar). The size and a hash of the first and last MiB catch
those: a zip-format ``.pt``/``.pth`` ends with its central directory, which holds the CRC-32 of
every tensor record, so any change of the weights changes the last MiB; a ``.safetensors`` file
starts with its header (names, shapes, offsets). Reading 2 MiB costs milliseconds.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Bytes hashed at each end of the file.
SAMPLE_BYTES = 1 << 20


def file_identity(path: Path | str) -> tuple[str, int, int, str]:
    """``(resolved path, size, mtime_ns, blake2b hex of the first and last MiB)`` of ``path``.

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    stat = path.stat()
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if stat.st_size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, stat.st_size - SAMPLE_BYTES), os.SEEK_SET)
            digest.update(handle.read(SAMPLE_BYTES))
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest.hexdigest()
