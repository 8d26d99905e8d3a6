"""Checkpoints: round trip, validation, and errors that name the mismatching key or class count."""
import pytest
import torch

from tagvis_lib.config import apply_overrides
from tagvis_lib.errors import CheckpointError
from tagvis_lib.model import build_model, load_checkpoint, load_model, save_checkpoint
from tagvis_lib.model.encoder import R2Plus1DEncoder


def categories(n: int) -> list[dict]:
    return [{"id": 10 + i, "name": f"class{i}", "supercategory": "thing"} for i in range(n)]


@pytest.fixture
def saved(tmp_path, small_experiment):
    model = build_model(small_experiment.model)
    # Move the BatchNorm running statistics away from their initial values.
    model.train()
    model(torch.randn(1, 3, 4, 32, 32))
    model.eval()
    path = tmp_path / "run" / "last.pt"
    save_checkpoint(path, model, small_experiment, categories(3), epoch=4, step=17, optimizer={"lr": torch.tensor(0.5)})
    return path, model


def test_round_trip_gives_identical_outputs(saved, small_experiment):
    path, model = saved
    loaded, cfg, cats = load_model(path)
    assert not loaded.training
    assert cfg.to_dict() == small_experiment.to_dict()
    assert cats == categories(3)
    x = torch.randn(1, 3, 5, 33, 41)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a.tags, b.tags) and torch.equal(a.logits, b.logits)


def test_extra_training_state_is_kept_and_the_write_is_atomic(saved):
    path, _ = saved
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == "tagvis-checkpoint-v1"
    assert ckpt["epoch"] == 4 and ckpt["step"] == 17 and float(ckpt["optimizer"]["lr"]) == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left


def test_failed_write_leaves_the_old_file(saved, small_experiment, monkeypatch):
    path, model = saved
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, small_experiment, categories(3))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_reserved_extra_names_are_refused(tmp_path, small_experiment):
    model = build_model(small_experiment.model)
    with pytest.raises(ValueError, match="format"):
        save_checkpoint(tmp_path / "x.pt", model, small_experiment, categories(3), format="mine")


def test_class_count_mismatch(saved):
    path, _ = saved
    with pytest.raises(CheckpointError, match="checkpoint has 3 classes, expected 40") as err:
        load_model(path, num_classes=40)
    assert str(path) in str(err.value)
    load_model(path, num_classes=3)


def test_weights_of_another_architecture_name_the_first_mismatching_key(saved):
    path, _ = saved
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["model"]["encoder_width"] = 0.25  # config says wider encoder than the weights
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"encoder\.stem\.0\.weight: shape \(6, 3, 1, 7, 7\).*\(11, 3, 1, 7, 7\)"):
        load_model(path)


def test_ablated_weights_under_the_full_config_name_the_missing_module(tmp_path, small_experiment):
    ablated_cfg = apply_overrides(small_experiment, {"model.tag_attention": False})
    path = tmp_path / "ablated.pt"
    save_checkpoint(path, build_model(ablated_cfg.model), ablated_cfg, categories(3))
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["model"]["tag_attention"] = True
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"tag_attention\.norm\.weight: missing"):
        load_model(path)


def test_bare_encoder_state_dict_is_not_a_tagvis_checkpoint(tmp_path):
    path = tmp_path / "r2plus1d.pth"
    torch.save(R2Plus1DEncoder(width=0.125).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"format: not a tagvis checkpoint.*encoder_weights"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda c: c.update(format="tagvis-checkpoint-v0"), "format"),
        (lambda c: c.pop("categories"), "categories"),
        (lambda c: c.update(categories=[{"name": "x"}]), "categories"),
        (lambda c: c.update(model=[1, 2]), "model"),
        (lambda c: c["config"].update(nonsense={}), "config"),
    ],
)
def test_malformed_checkpoints_name_the_field(saved, mutate, field):
    path, _ = saved
    ckpt = torch.load(path, weights_only=True)
    mutate(ckpt)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=rf": {field}: "):
        load_model(path)


def test_category_count_must_match_the_config(saved):
    path, _ = saved
    ckpt = torch.load(path, weights_only=True)
    ckpt["categories"] = categories(2)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="2 categories for model.num_classes=3"):
        load_model(path)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)


def test_checkpoint_needs_weights_only_pickles(tmp_path):
    """A checkpoint holding arbitrary Python objects is refused (weights_only=True)."""

    path = tmp_path / "evil.pt"
    torch.save({"format": "tagvis-checkpoint-v1", "model": {}, "config": {}, "categories": [], "x": Exception()}, path)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_checkpoint(path)


class Opaque:
    """An arbitrary class: torch.load(weights_only=True) refuses to unpickle it."""


def test_objects_weights_only_refuses_are_named_without_torchs_advice(tmp_path):
    from tagvis_lib.model.safe_load import load_weights_only

    path = tmp_path / "pickled.pt"
    torch.save({"model": Opaque()}, path)  # not a tensor, container or number
    with pytest.raises(CheckpointError, match="pickled.pt.*weights_only=True does not read") as info:
        load_weights_only(path)
    assert "False" not in str(info.value)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a file torch.save wrote \(it starts with b'not '"):
        load_weights_only(tmp_path / "text.pt")
