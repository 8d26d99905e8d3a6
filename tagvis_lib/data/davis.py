"""DAVIS 2017/2019 (unsupervised): the reader of the published layout, and palette PNG writing.

Layout: ``<root>/JPEGImages/480p/<seq>/00000.jpg``, ``<root>/Annotations_unsupervised/480p/<seq>/00000.png``
(palette PNGs: 0 background, 1..K objects, 255 void), ``<root>/ImageSets/<year>/<split>.txt``.

Objects of a sequence are the labels 1..K with K the largest label over all its annotation frames
(computed once per sequence and cached). The official evaluation counts only the objects of the
FIRST annotation frame; that count is in ``sample.meta["first_frame_objects"]``. A sequence without
an annotation folder (e.g. test-dev) yields no instances; otherwise every frame needs its PNG.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import IGNORE_INDEX
from ..errors import DataFormatError
from ..utils.atomic import atomic_open
from .sample import VideoSample
from .video import read_image

#: The single DAVIS category.
DAVIS_CATEGORIES = [{"id": 1, "name": "object", "supercategory": "object"}]


class DAVISDataset:
    """A DAVIS split; ``dataset[i]`` decodes sequence ``i`` into a :class:`VideoSample`.

    Every object has category 1; ``void`` is label 255; ``instance_ids`` are the object labels.
    """

    categories = DAVIS_CATEGORIES

    def __init__(self, root: str | os.PathLike, split: str, year: str = "2017", resolution: str = "480p"):
        self.root = Path(root)
        self.split = split
        self.split_file = self.root / "ImageSets" / year / f"{split}.txt"
        self.frames_dir = self.root / "JPEGImages" / resolution
        self.annotations_dir = self.root / "Annotations_unsupervised" / resolution
        if not self.split_file.is_file():
            raise DataFormatError(self.split_file, "split", "split file not found")
        names = [line.strip() for line in self.split_file.read_text(encoding="utf-8").splitlines()]
        self.sequences = [n for n in names if n]
        if not self.sequences:
            raise DataFormatError(self.split_file, "sequences", "the split file lists no sequence")
        self._frames: list[list[Path]] = []
        for line, name in enumerate(self.sequences, start=1):
            folder = self.frames_dir / name
            files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
            if not files:
                raise DataFormatError(folder, f"{self.split_file.name} line {line}", "no JPEG frames for this sequence")
            self._frames.append(files)
        self._objects: dict[int, tuple[int, int]] = {}  # sequence -> (K over all frames, K of frame 0)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> VideoSample:
        return self.load(i)

    @property
    def video_ids(self) -> list[str]:
        return list(self.sequences)

    @property
    def num_classes(self) -> int:
        return 1

    def class_index(self, category_id: int) -> int:
        if category_id != 1:
            raise KeyError(f"DAVIS has the single category 1, not {category_id}")
        return 1

    def category_id(self, class_index: int) -> int:
        if class_index != 1:
            raise KeyError(f"DAVIS has the single class index 1, not {class_index}")
        return 1

    def num_frames(self, i: int) -> int:
        return len(self._frames[i])

    def annotation_paths(self, i: int) -> list[Path] | None:
        """The PNG of every frame of sequence ``i``, or None when it has no annotation folder."""
        folder = self.annotations_dir / self.sequences[i]
        if not folder.is_dir():
            return None
        return [folder / (p.stem + ".png") for p in self._frames[i]]

    def check_files(self, unlisted: bool = False) -> int:
        """Check that each annotated sequence has one PNG per JPEG frame; return the frame count.

        Sequences without an annotation folder (test-dev) are skipped. ``unlisted``: also refuse
        PNGs that match no frame (stale labels of an earlier dataset). Raises :class:`DataFormatError`
        naming the annotation folder and the file.
        """
        total = 0
        for i, name in enumerate(self.sequences):
            total += len(self._frames[i])
            folder = self.annotations_dir / name
            if not folder.is_dir():
                continue
            present = {n for n in os.listdir(folder) if n.lower().endswith(".png")}
            wanted = [p.stem + ".png" for p in self._frames[i]]
            missing = [n for n in wanted if n not in present]
            if missing:
                raise DataFormatError(folder, missing[0], f"no annotation for frame {missing[0][:-4]}.jpg "
                                      f"({len(missing)} of {len(wanted)} frames have none)")
            extra = sorted(present - set(wanted))
            if unlisted and extra:
                raise DataFormatError(folder, extra[0], f"{len(extra)} annotation(s) match no JPEG frame of "
                                      f"{self.frames_dir / name}; left from an earlier dataset?")
        return total

    def num_objects(self, i: int) -> tuple[int, int]:
        """``(K, K0)``: largest object label over all annotation frames, and over the first one."""
        if i not in self._objects:
            pngs = self.annotation_paths(i)
            if pngs is None:
                self._objects[i] = (0, 0)
            else:
                size = _image_size(self._frames[i][0])
                maxima = [_object_max(read_palette_png(p, size)) for p in pngs]
                self._objects[i] = (max(maxima), maxima[0])
        return self._objects[i]

    def load(self, i: int, frame_indices: Sequence[int] | np.ndarray | None = None) -> VideoSample:
        """Decode sequence ``i``; only the frames ``frame_indices`` (any order, repeats allowed) if given.

        Returns masks ``(K, T, H, W)`` for objects 1..K and ``void`` ``(T, H, W)`` (label 255).
        """
        files = self._frames[i]
        sel = np.arange(len(files)) if frame_indices is None else np.asarray(frame_indices, dtype=np.int64)
        if sel.size and (sel.min() < 0 or sel.max() >= len(files)):
            raise IndexError(f"frame index outside 0..{len(files) - 1} for sequence {self.sequences[i]}")
        unique, inverse = np.unique(sel, return_inverse=True)
        first = read_image(files[unique[0]], f"{self.sequences[i]} frames")
        size = first.shape[:2]
        frames = np.stack([first] + [read_image(files[t], "frames", size) for t in unique[1:]])[inverse]
        num, first_objects = self.num_objects(i)
        pngs = self.annotation_paths(i)
        if pngs is None:
            labels = np.zeros((len(sel), *size), dtype=np.uint8)
        else:
            labels = np.stack([read_palette_png(pngs[t], size) for t in unique])[inverse]
        masks = labels[None] == np.arange(1, num + 1, dtype=np.uint8)[:, None, None, None]
        return VideoSample(
            video_id=self.sequences[i],
            frames=frames,
            masks=masks,
            categories=np.ones(num, dtype=np.int64),
            present=masks.any(axis=(2, 3)),
            frame_names=[files[t].name for t in sel],
            void=labels == IGNORE_INDEX,
            iscrowd=np.zeros(num, dtype=bool),
            instance_ids=np.arange(1, num + 1, dtype=np.int64),
            meta={"first_frame_objects": first_objects, "annotated": pngs is not None,
                  "length": len(files), "frame_indices": sel},
        )


def read_palette_png(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Labels uint8 ``(H, W)`` of a palette (mode 'P') PNG; another mode or size raises."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "annotation", "annotation file not found")
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                raise DataFormatError(path, "mode", f"expected a palette ('P') PNG, got mode {image.mode!r}")
            labels = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, "image data", f"cannot decode the PNG ({exc})") from None
    if size is not None and labels.shape != tuple(size):
        raise DataFormatError(
            path, "size", f"expected {size[1]}x{size[0]} (the frame's width x height), got {labels.shape[1]}x{labels.shape[0]}"
        )
    return labels


def davis_palette() -> list[int]:
    """The 256-entry palette of DAVIS annotations (the PASCAL VOC colour map), flat ``[r, g, b, ...]``."""
    palette = []
    for label in range(256):
        r = g = b = 0
        c = label
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


_PALETTE = davis_palette()


def encode_palette_png(labels: np.ndarray) -> bytes:
    """PNG file bytes of labels uint8 ``(H, W)`` as a DAVIS palette (mode 'P') image."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write labels uint8 ``(H, W)`` as a DAVIS palette PNG (atomically)."""
    with atomic_open(path, "wb") as fh:
        fh.write(encode_palette_png(labels))


def _object_max(labels: np.ndarray) -> int:
    values = labels[labels != IGNORE_INDEX]
    return int(values.max()) if values.size else 0


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(path, "image data", f"cannot decode the image ({exc})") from None
