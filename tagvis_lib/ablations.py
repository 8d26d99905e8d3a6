"""Table III of the paper: every ablation row as config overrides, with the paper's numbers.

Row names follow the paper's wording. The notebooks, the CLI and the tests all take the ablations
from :data:`TABLE3_ABLATIONS`; ``"Ours"`` is the full model (no override).

Reading of the rows (the paper defines a connector as "any input or output link of the module"):

- "Tag-Based Attention": the module is removed, the raw tags still feed the decoder.
- "Tag-Based Attention + Connector": no path from the tags to the decoder at all.
- "Self-Attention": the module is removed, the bottleneck features still feed the decoder.
- "Self-Attention + Connector": no path from the bottleneck features to the decoder.
- With ``model.encoder_skips`` on (cpu and smoke profiles), every "+ Connector" row also cuts the
  decoder's encoder skips (:func:`tagvis_lib.model.network.decoder_skips`): no path carries the
  input video representation into the decoder past the cut connector.
- "Tag-Based Attention + Self-Attention + Decoder + Connector": tags only; the semantic branch is
  replaced by a 1x1x1 classifier on the tag generator's features so that foreground and class are
  still predicted for evaluation (the decoder, both attentions and both connectors are gone).
"""
from __future__ import annotations

from typing import Any

#: Row name -> dotted config overrides (see :func:`tagvis_lib.config.apply_overrides`).
TABLE3_ABLATIONS: dict[str, dict[str, Any]] = {
    "L_spectra": {"loss.spectra_weight": 0.0},
    "L_specter": {"loss.specter_weight": 0.0},
    "L_tempra": {"loss.tempra_weight": 0.0},
    "L_temper": {"loss.temper_weight": 0.0},
    "Spatio-Temporal Attention": {"model.spatiotemporal_attention": False},
    "Tag-Based Attention": {"model.tag_attention": False},
    "Self-Attention": {"model.self_attention": False},
    "Location Embedding": {"model.location_embedding": False},
    "Tag-Based Attention + Connector": {
        "model.tag_attention": False,
        "model.tag_attention_connector": False,
    },
    "Self-Attention + Connector": {
        "model.self_attention": False,
        "model.self_attention_connector": False,
    },
    "Tag-Based Attention + Self-Attention + Decoder + Connector": {
        "model.tag_attention": False,
        "model.tag_attention_connector": False,
        "model.self_attention": False,
        "model.self_attention_connector": False,
        "model.semantic_decoder": False,
    },
    "Ours": {},
}

#: Group of each row in the paper's table.
TABLE3_GROUPS: dict[str, str] = {
    **{k: "w/o Losses" for k in ("L_spectra", "L_specter", "L_tempra", "L_temper")},
    **{k: "w/o Attention" for k in ("Spatio-Temporal Attention", "Tag-Based Attention", "Self-Attention")},
    **{
        k: "w/o Components"
        for k in (
            "Location Embedding",
            "Tag-Based Attention + Connector",
            "Self-Attention + Connector",
            "Tag-Based Attention + Self-Attention + Decoder + Connector",
        )
    },
    "Ours": "",
}

#: The paper's Table III (DAVIS'19 unsupervised val): row -> (J&F, J mean, F mean), in percent.
PAPER_TABLE3: dict[str, tuple[float, float, float]] = {
    "L_spectra": (67.2, 64.4, 70.0),
    "L_specter": (67.5, 65.2, 69.8),
    "L_tempra": (65.8, 63.3, 68.2),
    "L_temper": (66.3, 63.9, 68.7),
    "Spatio-Temporal Attention": (67.9, 65.4, 70.3),
    "Tag-Based Attention": (65.9, 63.5, 68.3),
    "Self-Attention": (70.3, 68.9, 71.6),
    "Location Embedding": (70.8, 69.8, 71.7),
    "Tag-Based Attention + Connector": (64.1, 62.6, 65.5),
    "Self-Attention + Connector": (67.4, 65.0, 69.7),
    "Tag-Based Attention + Self-Attention + Decoder + Connector": (61.6, 60.1, 63.0),
    "Ours": (74.3, 72.2, 76.4),
}

#: The paper's Table I row for this method (YouTube-VIS 2019 val), in percent.
PAPER_TABLE1 = {"AP": 51.2, "AP50": 74.8, "AP75": 57.9, "AR1": 46.3, "AR10": 57.6}
#: The paper's Table II row for this method (DAVIS'19 unsupervised val), in percent, and fps.
PAPER_TABLE2 = {"J&F-Mean": 74.3, "J-Mean": 72.2, "F-Mean": 76.4, "fps": 17.0}
