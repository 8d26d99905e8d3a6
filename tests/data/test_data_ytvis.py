"""YTVISDataset on hand-made fixtures: decoding, class mapping, laziness, and every bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from tagvis_lib.data import YTVISDataset, encode_rle
from tagvis_lib.errors import DataFormatError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W, T = 8, 10, 3


def _masks():
    a = np.zeros((T, H, W), bool)
    a[:, 1:4, 2:6] = True
    b = np.zeros((T, H, W), bool)
    b[:, 5:8, 0:3] = True
    b[2] = False  # absent in the last frame
    return a, b


def make_ytvis(root, split="train", **changes):
    """A YouTube-VIS split with one video of T frames and two annotations (categories 7 and 3)."""
    frame_dir = root / split / "JPEGImages" / "vid"
    frame_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for t in range(T):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(frame_dir / f"{5 * t:05d}.jpg")
    a, b = _masks()
    data = {
        "videos": [{"id": 4, "width": W, "height": H, "length": T,
                    "file_names": [f"vid/{5 * t:05d}.jpg" for t in range(T)]}],
        "categories": [{"id": 7, "name": "cat", "supercategory": "animal"}, {"id": 3, "name": "dog", "supercategory": "animal"}],
        "annotations": [
            {"id": 11, "video_id": 4, "category_id": 7, "iscrowd": 0,
             "segmentations": [encode_rle(m, compressed=False) for m in a]},
            {"id": 12, "video_id": 4, "category_id": 3, "iscrowd": 1,
             "segmentations": [encode_rle(b[0]), encode_rle(b[1]), None]},
        ],
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    (root / f"{split}.json").write_text(json.dumps(data))
    return data


def test_reads_both_rle_forms_nulls_and_maps_classes(tmp_path):
    make_ytvis(tmp_path)
    dataset = YTVISDataset(tmp_path, "train")
    assert len(dataset) == 1 and dataset.video_ids == [4] and dataset.num_classes == 2
    assert [c["id"] for c in dataset.categories] == [3, 7]
    assert dataset.class_index(3) == 1 and dataset.class_index(7) == 2 and dataset.category_id(2) == 7
    sample = dataset[0]
    a, b = _masks()
    np.testing.assert_array_equal(sample.masks, np.stack([a, b]))
    np.testing.assert_array_equal(sample.present, [[True] * 3, [True, True, False]])
    np.testing.assert_array_equal(sample.categories, [7, 3])
    np.testing.assert_array_equal(sample.iscrowd, [False, True])
    np.testing.assert_array_equal(sample.instance_ids, [11, 12])
    assert sample.frames.shape == (T, H, W, 3) and sample.frames.dtype == np.uint8
    part = dataset.load(0, [2, 0, 2])
    np.testing.assert_array_equal(part.masks, sample.masks[:, [2, 0, 2]])
    np.testing.assert_array_equal(part.frames, sample.frames[[2, 0, 2]])
    assert part.frame_names == ["vid/00010.jpg", "vid/00000.jpg", "vid/00010.jpg"]


def test_frames_are_decoded_only_on_access(tmp_path):
    make_ytvis(tmp_path)
    (tmp_path / "train" / "JPEGImages" / "vid" / "00005.jpg").unlink()
    dataset = YTVISDataset(tmp_path, "train")  # opening does not touch frames
    dataset.load(0, [0, 2])
    with pytest.raises(DataFormatError, match=r"00005\.jpg: videos\[0\]\.file_names\[1\]: frame file not found"):
        dataset[0]


def test_unannotated_server_split_and_sub_splits(tmp_path):
    make_ytvis(tmp_path, "valid", annotations=None)
    assert YTVISDataset(tmp_path, "valid")[0].num_instances == 0
    with pytest.raises(DataFormatError, match=r"valid\.json: annotations"):
        YTVISDataset(tmp_path, "valid", require_annotations=True)
    make_ytvis(tmp_path, "train")
    (tmp_path / "valid_sub.json").write_text((tmp_path / "train.json").read_text())
    assert YTVISDataset(tmp_path, "valid_sub").frames_dir == tmp_path / "train" / "JPEGImages"
    assert YTVISDataset(tmp_path, "valid_sub")[0].num_instances == 2


@pytest.mark.parametrize("key", ["videos", "annotations"])
def test_missing_top_level_key(tmp_path, key):
    make_ytvis(tmp_path, **{key: None})
    with pytest.raises(DataFormatError, match=rf"train\.json: {key}: expected a list"):
        YTVISDataset(tmp_path, "train")


def test_segmentation_list_of_wrong_length(tmp_path):
    data = make_ytvis(tmp_path)
    data["annotations"][1]["segmentations"].append(None)
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"train\.json: annotations\[1\]\.segmentations: expected a list of 3 entries .* got 4"):
        YTVISDataset(tmp_path, "train")


def test_rle_of_wrong_size(tmp_path):
    data = make_ytvis(tmp_path)
    data["annotations"][0]["segmentations"][2] = encode_rle(np.zeros((H + 1, W), bool))
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.segmentations\[2\]\.size: expected \[8, 10\]"):
        YTVISDataset(tmp_path, "train")


def test_uncompressed_counts_that_do_not_cover_the_frame(tmp_path):
    data = make_ytvis(tmp_path)
    data["annotations"][0]["segmentations"][1]["counts"] = [3, 4]
    (tmp_path / "train.json").write_text(json.dumps(data))
    dataset = YTVISDataset(tmp_path, "train")
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.segmentations: undecodable RLE"):
        dataset[0]


def test_unreadable_jpeg(tmp_path):
    make_ytvis(tmp_path)
    (tmp_path / "train" / "JPEGImages" / "vid" / "00010.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataFormatError, match=r"00010\.jpg: image data: cannot decode"):
        YTVISDataset(tmp_path, "train")[0]


def test_frame_of_another_size(tmp_path):
    make_ytvis(tmp_path)
    Image.new("RGB", (W + 2, H)).save(tmp_path / "train" / "JPEGImages" / "vid" / "00000.jpg")
    with pytest.raises(DataFormatError, match=r"00000\.jpg: size: expected 10x8"):
        YTVISDataset(tmp_path, "train")[0]


def test_unknown_video_and_category_and_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"train\.json: split: annotation file not found"):
        YTVISDataset(tmp_path, "train")
    data = make_ytvis(tmp_path)
    data["annotations"][0]["category_id"] = 99
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.category_id: unknown category 99"):
        YTVISDataset(tmp_path, "train")
    data["annotations"][0]["category_id"], data["annotations"][0]["video_id"] = 7, 5
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.video_id: no video has id 5"):
        YTVISDataset(tmp_path, "train")
