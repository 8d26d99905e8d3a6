"""The open points table names real config fields and shows the run's values."""
from tagvis_lib import apply_overrides, profile_config
from tagvis_lib.choices import OPEN_POINTS, open_points


def test_every_named_field_exists_and_its_value_is_shown():
    cfg = profile_config("cpu")
    rows = open_points(cfg)
    assert len(rows) == len(OPEN_POINTS) >= 15
    named = [f.strip() for _, _, _, fields in OPEN_POINTS for f in fields.split(",") if f.strip()]
    for field in named:  # apply_overrides raises KeyError on a field that does not exist
        section, _, name = field.partition(".")
        apply_overrides(cfg, {field: getattr(getattr(cfg, section), name)})
    for must in ("loss.margin", "model.tag_dim", "loss.pixels_per_instance", "loss.spectra_reduction",
                 "loss.temper_max_pairs", "inference.grouping", "inference.long_video", "model.tag_activation"):
        assert must in named
    changed = open_points(apply_overrides(cfg, {"loss.margin": 5.0, "model.tag_dim": 3}))
    assert changed[0]["Value"] == "none, 5.0" and changed[1]["Value"] == "3"
    assert all(r["Value"] == "-" for r in rows if r["Config field"] == "-")


def test_every_field_where_a_profile_leaves_the_paper_is_an_open_point():
    from dataclasses import fields

    from tagvis_lib.config import SECTIONS

    named = {f.strip() for _, _, _, names in OPEN_POINTS for f in names.split(",") if f.strip()}
    paper = profile_config("paper")
    missing = []
    for profile in ("cpu", "smoke"):
        cfg = profile_config(profile)
        for section in SECTIONS:
            for f in fields(getattr(cfg, section)):
                key = f"{section}.{f.name}"
                if getattr(getattr(cfg, section), f.name) != getattr(getattr(paper, section), f.name) and key not in named:
                    missing.append(f"{profile}: {key}")
    assert not missing, f"profile fields that differ from the paper profile without an open point: {missing}"
