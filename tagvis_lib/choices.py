"""The points the paper leaves open or contradicts, the choice made for each, and its config field.

One entry per open point (see the docstrings of :mod:`tagvis_lib.losses.tagging`,
:mod:`tagvis_lib.model.network`, :mod:`tagvis_lib.data.clips`, :mod:`tagvis_lib.inference.grouping`
and :mod:`tagvis_lib.inference.predictor` for the details). :func:`open_points` adds the value each
field has in a given config, so notebook 02 shows the choices of the run it describes.
"""
from __future__ import annotations

from typing import Any

from .config import ExperimentConfig

#: (open point, what the paper says, the choice made, config fields or "" when fixed by design).
OPEN_POINTS: list[tuple[str, str, str, str]] = [
    ("Tag range", "tags 'between 0 and 1' (abstract) but margin G = 3 (III-E)",
     "unbounded tags, G = 3; a sigmoid (0..1) is an option (then the push terms are constant)",
     "model.tag_activation, loss.margin"),
    ("Tag dimension D", "scalar tag values",
     "D = 1 by default (paper profile); D > 1 uses squared Euclidean distances and the Euclidean norm "
     "(D = 4 at the cpu profile, where scalar tags did not separate the instances)",
     "model.tag_dim"),
    ("Instances absent from a frame", "not said",
     "they take no part in the frame-t terms of eqs. (4)-(5); clips with 0 or 1 instance give 0, never NaN", ""),
    ("Pixel sampling M'", "M' pixels per instance, how not said",
     "uniform without replacement per instance and clip, seeded; None = every pixel (deterministic)",
     "loss.pixels_per_instance"),
    ("Scale of L_spectra", "a sum over the M' pixels (eq. 2)",
     "the paper's sum by default; a per-pixel mean with a weight as an option (cpu profile: mean, "
     "weight 10, so the pull no longer dwarfs the push terms)", "loss.spectra_reduction, loss.spectra_weight"),
    ("N' of L_temper", "'an arbitrary subset' of instance pairs",
     "all pairs present together in the frame; optionally a seeded random subset of pairs",
     "loss.temper_max_pairs"),
    ("Output at every frame and pixel", "tags and masks for all T input frames, encoder strides in T and H, W",
     "per-frame queries in the spatio-temporal attention; upsampling paths (trilinear resize) back to "
     "(T, H, W) through the sizes of encoder layers 3, 2, 1", ""),
    ("Encoder skips", "the bottleneck 'separates the encoder from the tag generator and the decoder'",
     "no skips in the paper profile; the cpu and smoke profiles keep skips from layers 1-3 into both "
     "heads, the network every cpu-profile choice was measured with (not yet measured without); in a "
     "'+ Connector' row of Table III the decoder's skips are cut as well",
     "model.encoder_skips"),
    ("Connectors (Table III)", "'any input or output link of the module'",
     "tag connector = 1x1x1 MLP from pooled tags to the decoder; self-attention connector = the "
     "bottleneck-to-decoder link", "model.tag_attention_connector, model.self_attention_connector"),
    ("Tags-only row of Table III", "decoder, both attentions and connectors removed",
     "a 1x1x1 classifier on the tag generator's features still gives foreground and class",
     "model.semantic_decoder"),
    ("Training videos shorter than T", "not said",
     "pad by repeating the last frame, marked invalid (no loss there); or loop forth and back",
     "data.short_video"),
    ("Batch size, input resolution", "not given",
     "paper profile: one 32-frame clip per GPU at 360x640, the size YouTube-VIS baselines train at "
     "(MaskTrack R-CNN resizes the 720x1280 frames to 640x360); cpu 96x160 and batch 2, smoke 48x80 "
     "(what 2 cores train in minutes)", "train.batch_size, data.height, data.width"),
    ("Loss schedule", "every term of eqs. (6)-(7) from the first step",
     "the paper's by default (every profile); as an option the four tagging terms join after "
     "loss.tagging_start_step cross-entropy-only steps, rising linearly over loss.tagging_ramp_steps "
     "(a probe for the textured benchmark, where the tagging terms held the semantic branch back)",
     "loss.tagging_start_step, loss.tagging_ramp_steps"),
    ("Gradients between the tags and the semantic branch", "one network trained end to end on eqs. (6)-(7)",
     "end to end by default (every profile); as an option the gradient the tag generator sends into "
     "the encoder and bottleneck is scaled down (0: the tags learn on features the cross-entropy trains), "
     "and so is the gradient the semantic decoder sends back into the tags through the tag connector "
     "(0: the tags learn from the tagging loss alone)",
     "model.tag_trunk_gradient, model.tag_connector_gradient"),
    ("Position in the tag generator", "the tags come from the features (location embedding on layer4 only)",
     "the paper's by default (every profile); as an option each stage of the tag generator and its head "
     "also take the pixel's (row, column) through zero-initialised 1x1x1 maps (CoordConv), so touching "
     "instances of one class can take tags that follow their place (textured valid, 3 seeds, with "
     "inference.bridge_bandwidth=3: AP 0.112 -> 0.155, J&F 0.549 -> 0.636; not yet in any profile)",
     "model.tag_coordinates"),
    ("Colour in the tag generator", "the tags come from the features",
     "the paper's by default (every profile); as an option each stage of the tag generator and its head "
     "also take the input frames' colours averaged over the stage's grid, through zero-initialised 1x1x1 "
     "maps, because instances of one class differ in tint while the cross-entropy trains the shared "
     "features to ignore it (textured valid, 3 seeds against the six runs of the recipe without it: AP "
     "0.175 -> 0.241, J&F 0.674 -> 0.707; in the textured recipe, not in the cpu profile)",
     "model.tag_appearance"),
    ("Class balance of L_crossentropy", "plain cross-entropy (eq. 7)",
     "plain by default; background pixels can weigh less (cpu profile: 0.25, chosen on the simple "
     "benchmark; the textured recipe keeps the plain weighting: textured valid, 3 seeds, AP 0.155 -> 0.197 "
     "at the same inference)", "loss.background_weight"),
    ("Encoder normalisation", "not said",
     "BatchNorm with batch statistics (SyncBatchNorm under DDP on CUDA) or frozen statistics; GroupNorm in "
     "place of every encoder BatchNorm as an option for training from scratch (per-clip statistics, the same "
     "in training and evaluation; no Kinetics checkpoint fits it). Every profile keeps BatchNorm",
     "train.batchnorm, model.encoder_norm"),
    ("Tags to instances", "not described",
     "foreground from the semantic branch; mean shift of all foreground tags of the clip, bandwidth "
     "G / 2 (paper profile); histogram peaks and greedy seed-and-grow as options; at the cpu profile "
     "connected components of the foreground split by a mean shift of their own tags, bandwidth 1.0 "
     "(chosen on a held-out benchmark drawn with another seed, never on the valid split)",
     "inference.grouping, inference.bandwidth, inference.foreground_threshold"),
    ("Class and score", "not described",
     "class by majority vote of the semantic argmax; score = mean class probability x tag compactness; "
     "optionally x the fraction of the video's frames the mask covers (cpu profile: short-lived "
     "fragments were most of the false positives); each mask under its top-k classes",
     "inference.coverage_score, inference.topk_classes"),
    ("Test-time mirroring", "not said (one forward pass per clip)",
     "one pass by default (every profile); as an option each clip also runs mirrored left-right and the "
     "class probabilities of both passes, background included, are averaged (tags from the unmirrored "
     "pass; twice the network work). Textured valid, 3 seeds, with a foreground threshold of 0.4: AP "
     "0.205 -> 0.234; as a further option the mirrored pass's tags, flipped back, join the unmirrored "
     "pass's as a second view of each pixel, (tags, mirrored) / sqrt(2) (six models: AP +0.007 [-0.006, "
     "+0.021], not resolved; no profile)",
     "inference.flip_average, inference.flip_tags"),
    ("Long videos", "one clip of 32 frames by dropping intermittent frames",
     "the paper's single clip; overlapping clips linked by tags as an option (cpu profile: 8-frame "
     "clips cannot span videos of up to 84 frames); as a further option, a track that ends is joined "
     "to a later one of its class when one 2-frame pass of the frames either side of the gap tags them "
     "alike (for instances that leave the view and return, which linked clips alone cannot follow; "
     "textured valid, one model: AP 0.055 -> 0.083, J&F 0.496 -> 0.533), within a tag distance of its "
     "own (inference.bridge_bandwidth; None: the grouping bandwidth; the textured recipe uses 5: with "
     "model.tag_appearance, 3 seeds on valid, AP +0.016 [+0.007, +0.026] against 3)",
     "inference.long_video, inference.clip_overlap, inference.bridge_gaps, inference.bridge_bandwidth"),
    ("Frames not processed", "masks 'interpolated from their processed neighbours'",
     "soft masks of the nearest processed frame (or a linear blend of both), then thresholded",
     "inference.interpolation"),
    ("Videos shorter than the clip at inference", "not said",
     "padded by repeating the last frame; padded frames hold no foreground and never reach the output", ""),
    ("Numeric precision and memory format", "not said (trained on V100s)",
     "float32 weights; bf16 autocast where the device has it, fp16 with a gradient scaler on older GPUs "
     "(paper and cpu profiles: auto); channels_last_3d at the cpu profile (measured fastest on 2 cores, "
     "benchmarks/model_speed.py)",
     "train.precision, inference.precision, model.memory_format"),
    ("Compute budget of the cpu profile", "32-frame clips, R(2+1)D-18, Adam at lr 1e-4 for 100 epochs (on GPUs)",
     "what 2 CPU cores train in about 15 minutes: 8-frame clips (twice the optimiser steps of 16-frame "
     "ones in the same time), encoder width 0.25 and embed dim 64 (the full network trains about 3.5 "
     "frames/s here, 9 s per 32-frame clip; benchmarks/model_speed.py), lr 3e-3 (raised together with "
     "D = 4 and the mean pull, valid AP 0.067 -> 0.119; from random weights) with a cosine schedule "
     "after 20 warm-up steps, 120 epochs; inference on 8-frame clips like training; "
     "the smoke profile shrinks all of it further (width 0.125, embed dim 16, 2 heads, lr 1e-3, 4 steps, "
     "a log line per step, no warm-up run) so that CI runs every notebook in minutes; the cpu profile "
     "keeps up to 2 GiB of decoded training frames between epochs (the same clips, each frame read once)",
     "data.clip_length, inference.clip_length, model.encoder_width, model.embed_dim, model.attention_heads, "
     "train.lr, train.lr_schedule, train.warmup_steps, train.epochs, train.max_steps, train.log_every, "
     "inference.warmup_runs, data.frame_cache_mb"),
    ("Final weights", "the trained network (no averaging said)",
     "the last weights; as an option an exponential moving average of the weights and BatchNorm "
     "statistics (decay min(d, (1 + t) / (10 + t))), which model_final.pt then holds (textured valid, "
     "3 runs, d = 0.999: AP -0.002 [-0.013, +0.010]; no profile)",
     "train.ema_decay"),
    ("Kinetics-400 weights", "encoder pretrained on Kinetics-400",
     "torchvision's r2plus1d_18 state dict from a local file (nothing is downloaded); random init otherwise",
     "model.encoder_weights"),
]


def _value(cfg: ExperimentConfig, dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    return getattr(getattr(cfg, section), name)


def open_points(cfg: ExperimentConfig) -> list[dict[str, str]]:
    """Rows ``{"Open point", "Paper", "Choice", "Config field", "Value"}``; ``Value`` is each field's
    value in ``cfg`` (``-`` for points fixed by design)."""
    rows = []
    for point, paper, choice, fields in OPEN_POINTS:
        names = [f.strip() for f in fields.split(",") if f.strip()]
        value = ", ".join(f"{_value(cfg, n)}" for n in names) if names else "-"
        rows.append({"Open point": point, "Paper": paper, "Choice": choice,
                     "Config field": ", ".join(f"`{n}`" for n in names) or "-", "Value": value})
    return rows
