"""Decoding frames: single image files, and whole videos (any file PyAV decodes, or a folder of frames).

Every failure raises :class:`~tagvis_lib.errors.DataFormatError` naming the file and the field:
a missing frame file, an image Pillow cannot decode, a frame of another size than its neighbours,
a file that is not a video, a video without a video stream or whose codec FFmpeg cannot decode,
and a video that yields no frame.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataFormatError
from .sample import VideoSample

#: File name endings read as frames of a frame folder (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_image(path: str | os.PathLike, field: str = "frame", size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file to RGB uint8 ``(H, W, 3)``.

    Args:
        path: the image file.
        field: where the file is referenced (used in the error message when the file is missing).
        size: expected ``(H, W)``; another size raises.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, field, "frame file not found")
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as image:  # one read: about 2x faster than PIL's small reads
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise DataFormatError(path, "image data", f"cannot decode the image ({exc})") from None
    if size is not None and rgb.shape[:2] != tuple(size):
        raise DataFormatError(
            path, "size", f"expected {size[1]}x{size[0]} (width x height), got {rgb.shape[1]}x{rgb.shape[0]}"
        )
    return rgb


def read_video(path: str | os.PathLike) -> VideoSample:
    """Decode a whole video into a :class:`VideoSample` without masks (``N = 0``).

    ``path`` is a video file (anything PyAV decodes: mp4, webm, avi, gif, ...) or a folder of frames
    (image files with an :data:`IMAGE_EXTENSIONS` ending, in sorted file-name order). The video id is
    the file stem or folder name; frame names are the image file names or ``00000``, ``00001``, ...
    for a video file. A video file whose tail fails to decode keeps the frames decoded before the
    failure and records the error in ``meta["decode_error"]``; one that yields no frame raises.
    ``meta`` also holds ``decoded_frames`` and, for a video file, ``declared_frames`` (the count its
    container declares, None when unknown); :func:`decode_problem` tells when they disagree.
    """
    path = Path(path)
    if path.is_dir():
        frames, names, meta = _read_frame_folder(path)
    elif path.is_file():
        frames, names, meta = _decode_video_file(path)
    else:
        raise DataFormatError(path, "path", "no such video file or frame folder")
    video = np.stack(frames)
    num, height, width = video.shape[:3]
    meta["decoded_frames"] = num
    return VideoSample(
        video_id=path.stem if path.is_file() else path.name,
        frames=video,
        masks=np.zeros((0, num, height, width), dtype=bool),
        categories=np.zeros(0, dtype=np.int64),
        present=np.zeros((0, num), dtype=bool),
        frame_names=names,
        void=None,
        iscrowd=np.zeros(0, dtype=bool),
        instance_ids=np.zeros(0, dtype=np.int64),
        meta=meta,
    )


def _read_frame_folder(folder: Path) -> tuple[list[np.ndarray], list[str], dict]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataFormatError(folder, "frames", f"folder holds no image file ({', '.join(IMAGE_EXTENSIONS)})")
    first = read_image(files[0])
    frames = [first] + [read_image(p, size=first.shape[:2]) for p in files[1:]]
    return frames, [p.name for p in files], {"source": str(folder), "fps": None}


def _decode_video_file(path: Path) -> tuple[list[np.ndarray], list[str], dict]:
    import av  # PyAV only for video files: frame folders and single images need Pillow alone

    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, "container", f"not a video file FFmpeg can open ({exc})") from None
    frames: list[np.ndarray] = []
    meta: dict = {"source": str(path), "fps": None}
    with container:
        if not container.streams.video:
            raise DataFormatError(path, "streams", "the file holds no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise DataFormatError(path, "codec", "FFmpeg has no decoder for the codec of the video stream")
        if stream.average_rate:
            meta["fps"] = float(stream.average_rate)
        meta["declared_frames"] = _declared_frames(container, stream)
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
        except (av.FFmpegError, ValueError) as exc:
            if not frames:
                raise DataFormatError(path, "video stream", f"no decodable frame ({exc})") from None
            meta["decode_error"] = str(exc)
    if not frames:
        raise DataFormatError(path, "video stream", "no decodable frame")
    return frames, [f"{i:05d}" for i in range(len(frames))], meta


def _declared_frames(container: Any, stream: Any) -> int | None:
    """Frame count the file declares: the stream's own count, else its duration x frame rate (None if neither)."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate
    if stream.duration and stream.time_base and rate:
        return int(round(float(stream.duration * stream.time_base * rate)))
    if container.duration and rate:  # microseconds (av.time_base)
        return int(round(container.duration / 1_000_000 * float(rate)))
    return None


def decode_problem(meta: dict) -> str | None:
    """A one-line description when a video file decoded short of what it declares, else None.

    ``meta`` is :attr:`VideoSample.meta` of :func:`read_video`: the decoded frame count is
    ``meta["decoded_frames"]``, the declared one ``meta["declared_frames"]``, the error
    ``meta["decode_error"]``.
    """
    decoded, declared, error = meta.get("decoded_frames"), meta.get("declared_frames"), meta.get("decode_error")
    short = declared is not None and decoded is not None and decoded < declared
    if not short and not error:
        return None
    text = f"decoded {decoded} frames" + (f" of the {declared} the file declares" if declared is not None else "")
    return text + (f"; decoding stopped with: {error}" if error else "")
