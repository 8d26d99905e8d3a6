"""DAVISDataset on hand-made fixtures: objects, void, first-frame count, and every bad input."""
import numpy as np
import pytest
from PIL import Image

from tagvis_lib.data import DAVISDataset, read_palette_png, write_palette_png
from tagvis_lib.errors import DataFormatError

H, W = 6, 8


def _labels():
    labels = np.zeros((3, H, W), np.uint8)
    labels[:, 0:2, 0:2] = 1
    labels[:, 4:6, 6:8] = 255  # void
    labels[2, 3:5, 1:3] = 2  # object 2 enters in the last frame
    return labels


def make_davis(root, split="val", seq="seq"):
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / f"{split}.txt").write_text(f"{seq}\n")
    frames = root / "JPEGImages" / "480p" / seq
    frames.mkdir(parents=True, exist_ok=True)
    for t, labels in enumerate(_labels()):
        Image.new("RGB", (W, H), (40 * t, 0, 0)).save(frames / f"{t:05d}.jpg")
        write_palette_png(root / "Annotations_unsupervised" / "480p" / seq / f"{t:05d}.png", labels)
    return root / "Annotations_unsupervised" / "480p" / seq


def test_objects_void_and_first_frame_count(tmp_path):
    make_davis(tmp_path)
    dataset = DAVISDataset(tmp_path, "val")
    assert dataset.video_ids == ["seq"] and dataset.categories == [{"id": 1, "name": "object", "supercategory": "object"}]
    sample = dataset[0]
    labels = _labels()
    assert sample.masks.shape == (2, 3, H, W)  # K = largest label over the whole sequence
    np.testing.assert_array_equal(sample.masks[0], labels == 1)
    np.testing.assert_array_equal(sample.masks[1], labels == 2)
    np.testing.assert_array_equal(sample.void, labels == 255)
    np.testing.assert_array_equal(sample.present, [[True] * 3, [False, False, True]])
    np.testing.assert_array_equal(sample.categories, [1, 1])
    assert sample.meta["first_frame_objects"] == 1
    assert sample.frame_names == ["00000.jpg", "00001.jpg", "00002.jpg"]
    part = dataset.load(0, [1, 1])
    assert part.masks.shape == (2, 2, H, W) and part.frame_names == ["00001.jpg", "00001.jpg"]


def test_palette_png_round_trip(tmp_path):
    labels = _labels()[2]
    write_palette_png(tmp_path / "a.png", labels)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3:6] == [128, 0, 0]  # DAVIS colour of object 1
    np.testing.assert_array_equal(read_palette_png(tmp_path / "a.png"), labels)


def test_sequence_without_annotations_has_no_instances(tmp_path):
    folder = make_davis(tmp_path)
    for png in folder.iterdir():
        png.unlink()
    folder.rmdir()
    sample = DAVISDataset(tmp_path, "val")[0]
    assert sample.num_instances == 0 and sample.num_frames == 3


def test_png_not_in_palette_mode(tmp_path):
    folder = make_davis(tmp_path)
    Image.fromarray(_labels()[1]).save(folder / "00001.png")  # mode 'L'
    with pytest.raises(DataFormatError, match=r"00001\.png: mode: expected a palette \('P'\) PNG, got mode 'L'"):
        DAVISDataset(tmp_path, "val")[0]


def test_png_of_another_size(tmp_path):
    folder = make_davis(tmp_path)
    write_palette_png(folder / "00002.png", np.zeros((H, W + 1), np.uint8))
    with pytest.raises(DataFormatError, match=r"00002\.png: size: expected 8x6"):
        DAVISDataset(tmp_path, "val")[0]


def test_empty_and_missing_split_file(tmp_path):
    make_davis(tmp_path)
    (tmp_path / "ImageSets" / "2017" / "train.txt").write_text("\n")
    with pytest.raises(DataFormatError, match=r"train\.txt: sequences: the split file lists no sequence"):
        DAVISDataset(tmp_path, "train")
    with pytest.raises(DataFormatError, match=r"test-dev\.txt: split: split file not found"):
        DAVISDataset(tmp_path, "test-dev")
    (tmp_path / "ImageSets" / "2017" / "train.txt").write_text("nosuchseq\n")
    with pytest.raises(DataFormatError, match=r"nosuchseq: train\.txt line 1: no JPEG frames"):
        DAVISDataset(tmp_path, "train")


def test_missing_annotation_for_a_frame(tmp_path):
    folder = make_davis(tmp_path)
    (folder / "00001.png").unlink()
    with pytest.raises(DataFormatError, match=r"00001\.png: annotation: annotation file not found"):
        DAVISDataset(tmp_path, "val")[0]


def test_check_files_finds_missing_and_stale_annotations(tmp_path):
    folder = make_davis(tmp_path)
    assert DAVISDataset(tmp_path, "val").check_files(unlisted=True) == 3
    write_palette_png(folder / "00007.png", _labels()[0])  # a label of an earlier, longer sequence
    assert DAVISDataset(tmp_path, "val").check_files() == 3  # stale files only matter with unlisted
    with pytest.raises(DataFormatError, match=r"00007\.png: 1 annotation\(s\) match no JPEG frame"):
        DAVISDataset(tmp_path, "val").check_files(unlisted=True)
    (folder / "00001.png").unlink()
    with pytest.raises(DataFormatError, match=r"00001\.png: no annotation for frame 00001\.jpg \(1 of 3"):
        DAVISDataset(tmp_path, "val").check_files()
