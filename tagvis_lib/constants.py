"""Constants shared by every part of tagvis."""

#: Label for pixels that take no part in any loss or metric (DAVIS void, padded frames).
IGNORE_INDEX = 255
#: Frames per clip, paper section III-A.
CLIP_LENGTH = 32
#: Kinetics-400 normalisation used by torchvision's video models (RGB, values in [0, 1]).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
#: Videos per split of the embedded synthetic benchmark (``tagvis synth`` defaults).
SYNTH_TRAIN_VIDEOS = 40
SYNTH_VALID_VIDEOS = 10
