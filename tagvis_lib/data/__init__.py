"""Data layer: dataset readers, the synthetic benchmark, clip sampling and the torch dataset.

Readers (no torch needed): :class:`YTVISDataset`, :class:`DAVISDataset`, :func:`read_video`, each
yielding :class:`VideoSample`. Clip sampling and augmentation live in :mod:`tagvis_lib.data.clips`,
the torch ``Dataset``/collate in :mod:`tagvis_lib.data.torch_dataset` (imported on demand: they
load torch).
"""
from .check import check_dataset, open_dataset
from .davis import DAVIS_CATEGORIES, DAVISDataset, read_palette_png, write_palette_png
from .sample import VideoSample
from .split import split_ytvis
from .synth import CATEGORIES as SYNTH_CATEGORIES
from .synth import SynthVideo, make_video, write_benchmark
from .video import read_image, read_video
from .ytvis import YTVISDataset, decode_rles, encode_rle

__all__ = [
    "DAVIS_CATEGORIES", "DAVISDataset", "SYNTH_CATEGORIES", "SynthVideo", "VideoSample", "YTVISDataset",
    "check_dataset", "decode_rles", "encode_rle", "make_video", "open_dataset", "read_image",
    "read_palette_png", "read_video", "split_ytvis", "write_benchmark", "write_palette_png",
]
