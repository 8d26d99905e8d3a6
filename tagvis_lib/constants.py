"""Constants shared by every part of tagvis."""

#: Label for pixels that take no part in any loss or metric (DAVIS void, padded frames).
IGNORE_INDEX = 255
#: Frames per clip, paper section III-A.
CLIP_LENGTH = 32
#: Kinetics-400 normalisation used by torchvision's video models (RGB, values in [0, 1]).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
#: Videos per split of the embedded synthetic benchmark (``tagvis synth`` defaults, simple style).
SYNTH_TRAIN_VIDEOS = 40
SYNTH_VALID_VIDEOS = 10
#: ``tagvis synth`` defaults per style: videos per split and the frame size (textured: per-video sizes around it).
SYNTH_DEFAULTS = {
    "simple": {"n_train": SYNTH_TRAIN_VIDEOS, "n_valid": SYNTH_VALID_VIDEOS, "n_test": 30, "height": 96, "width": 160},
    "textured": {"n_train": 80, "n_valid": 20, "n_test": 30, "height": 120, "width": 216},
}
