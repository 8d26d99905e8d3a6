"""`tagvis synth`, `tagvis data-check` and `tagvis split` through the command's entry point."""
import json
import shutil

import numpy as np
import pytest

from tagvis_lib.cli import main
from tagvis_lib.data import YTVISDataset, make_video

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _json_line(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_synth_command_writes_both_layouts(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--train-videos", "2", "--valid-videos", "1",
                 "--seed", "2", "--height", "32", "--width", "48"]) == 0
    summary = _json_line(capsys)
    assert summary["train_videos"] == 2 and summary["valid_videos"] == 1
    assert (tmp_path / "ytvis" / "valid" / "JPEGImages" / "valid0000" / "00005.jpg").is_file()
    assert (tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt").read_text() == "valid0000\n"
    sample = YTVISDataset(tmp_path / "ytvis", "train")[1]
    np.testing.assert_array_equal(sample.masks, make_video("train", 1, 2, 32, 48).masks)


def test_synth_command_textured_style_with_a_test_split(tmp_path, capsys):
    pytest.importorskip("skimage")
    assert main(["synth", str(tmp_path), "--style", "textured", "--train-videos", "1", "--valid-videos", "1",
                 "--test-videos", "2", "--height", "40", "--width", "64"]) == 0
    summary = _json_line(capsys)
    assert summary["style"] == "textured" and summary["test_videos"] == 2
    assert (tmp_path / "DAVIS" / "ImageSets" / "2017" / "test-dev.txt").read_text() == "test0000\ntest0001\n"
    assert main(["data-check", "--ytvis", str(tmp_path / "ytvis"), "--split", "test"]) == 0
    assert _json_line(capsys)["videos"] == 2
    sample = YTVISDataset(tmp_path / "ytvis", "test")[1]
    np.testing.assert_array_equal(sample.masks, make_video("test", 1, 0, 40, 64, style="textured").masks)


def test_data_check_counts(synth_benchmark, capsys):
    args = synth_benchmark["args"]
    videos = [make_video("train", i, args["seed"], args["height"], args["width"]) for i in range(args["n_train"])]
    assert main(["data-check", "--ytvis", str(synth_benchmark["ytvis"]), "--split", "train"]) == 0
    counts = _json_line(capsys)
    pairs = sum(int((v.categories[:, None] == v.categories[None]).sum() - len(v.categories)) // 2 for v in videos)
    assert counts == {"videos": 4, "frames": sum(len(v.frames) for v in videos),
                      "instances": sum(len(v.categories) for v in videos), "categories": 5,
                      "same_category_pairs": pairs}
    assert main(["data-check", "--davis", str(synth_benchmark["davis"]), "--split", "train"]) == 0
    davis = _json_line(capsys)
    assert davis["categories"] == 1 and davis["frames"] == counts["frames"] and davis["instances"] == counts["instances"]


def test_data_check_names_file_and_field_of_the_first_problem(synth_benchmark, tmp_path, capsys):
    root = tmp_path / "ytvis"
    shutil.copytree(synth_benchmark["ytvis"], root)
    data = json.loads((root / "train.json").read_text())
    data["annotations"][2]["segmentations"].pop()
    (root / "train.json").write_text(json.dumps(data))
    assert main(["data-check", "--ytvis", str(root), "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "tagvis data-check: error:" in err and "train.json: annotations[2].segmentations: expected a list of" in err
    davis = tmp_path / "DAVIS"
    shutil.copytree(synth_benchmark["davis"], davis)
    victim = sorted((davis / "JPEGImages" / "480p" / "valid0001").glob("*.jpg"))[7]
    victim.write_bytes(b"garbage")
    assert main(["data-check", "--davis", str(davis), "--split", "val"]) == 2
    assert f"{victim}: image data: cannot decode" in capsys.readouterr().err


def test_split_is_deterministic_keeps_categories_and_reads_train_frames(synth_benchmark, tmp_path, capsys):
    root = tmp_path / "ytvis"
    shutil.copytree(synth_benchmark["ytvis"], root)
    assert main(["split", str(root), "--holdout", "0.5", "--seed", "3"]) == 0
    balance = _json_line(capsys)
    assert balance["train_videos"] == 2 and balance["valid_videos"] == 2
    assert balance["missing_in_train"] == []
    first = (root / "valid_sub.json").read_bytes()
    assert main(["split", str(root), "--holdout", "0.5", "--seed", "4"]) == 2  # a second split: never silently
    assert "--overwrite" in capsys.readouterr().err and (root / "valid_sub.json").read_bytes() == first
    assert main(["split", str(root), "--holdout", "0.5", "--seed", "3", "--overwrite"]) == 0
    capsys.readouterr()
    assert (root / "valid_sub.json").read_bytes() == first
    train, valid = YTVISDataset(root, "train_sub"), YTVISDataset(root, "valid_sub")
    assert sorted(train.video_ids + valid.video_ids) == [1, 2, 3, 4] and not set(train.video_ids) & set(valid.video_ids)
    assert valid[0].frames.shape[0] == valid.num_frames(0)
    used = {int(c) for i in range(len(valid)) for c in valid[i].categories}
    in_train = {int(c) for i in range(len(train)) for c in train[i].categories}
    assert used <= in_train  # every category of the held-out videos stays in train
    names = {c["id"]: c["name"] for c in train.categories}
    for cat, (n_train, n_valid) in balance["categories"].items():
        assert n_valid == sum(int((valid[i].categories == cid).sum()) for i in range(len(valid))
                              for cid in names if names[cid] == cat)
