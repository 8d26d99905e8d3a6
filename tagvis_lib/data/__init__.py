"""Data layer: dataset readers, the synthetic benchmark, clip sampling and the torch dataset.

Readers (no torch needed): :class:`YTVISDataset`, :class:`DAVISDataset`, :func:`read_video`, each
yielding :class:`VideoSample`. Clip sampling and augmentation live in :mod:`tagvis_lib.data.clips`,
the torch ``Dataset``/collate in :mod:`tagvis_lib.data.torch_dataset` (imported on demand: they
load torch). The names below are imported on first use.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".check": ["check_dataset", "open_dataset"],
    ".davis": ["DAVIS_CATEGORIES", "DAVISDataset", "read_palette_png", "write_palette_png"],
    ".sample": ["VideoSample"],
    ".split": ["split_ytvis"],
    ".synth": ["CATEGORIES as SYNTH_CATEGORIES", "SynthVideo", "make_video", "write_benchmark"],
    ".video": ["read_image", "read_video"],
    ".ytvis": ["YTVISDataset", "decode_rles", "encode_rle"],
})
