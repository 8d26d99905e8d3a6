"""read_video on files written with PyAV, on frame folders, and on files that are not videos."""
import struct
import wave

import av
import numpy as np
import pytest
from PIL import Image

from tagvis_lib.data import read_video
from tagvis_lib.errors import DataFormatError

H, W, N = 48, 64, 6


def _frames():
    frames = np.zeros((N, H, W, 3), np.uint8)
    for t in range(N):
        frames[t, :, :, 0] = 30 * t
        frames[t, 10:30, 8 + 6 * t:28 + 6 * t] = (0, 200, 60)
    return frames


def write_mp4(path, frames, codec="mpeg4"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_reads_an_mp4_written_with_pyav(tmp_path):
    frames = _frames()
    video = read_video(write_mp4(tmp_path / "clip.mp4", frames))
    assert video.video_id == "clip" and video.frames.shape == (N, H, W, 3) and video.frames.dtype == np.uint8
    assert video.num_instances == 0 and video.masks.shape == (0, N, H, W)
    assert video.frame_names[:2] == ["00000", "00001"] and video.meta["fps"] == 10.0
    assert np.abs(video.frames.astype(int) - frames).mean() < 8  # lossy codec


def test_reads_a_folder_of_jpegs_in_name_order(tmp_path):
    frames = _frames()
    for t in reversed(range(N)):
        Image.fromarray(frames[t]).save(tmp_path / f"f{t:03d}.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("ignored")
    video = read_video(tmp_path)
    assert video.frame_names == [f"f{t:03d}.jpg" for t in range(N)]
    assert np.abs(video.frames.astype(int) - frames).mean() < 4


def test_folder_errors(tmp_path):
    with pytest.raises(DataFormatError, match="frames: folder holds no image file"):
        read_video(tmp_path)
    Image.new("RGB", (W, H)).save(tmp_path / "a.jpg")
    Image.new("RGB", (W, H + 2)).save(tmp_path / "b.jpg")
    with pytest.raises(DataFormatError, match=r"b\.jpg: size: expected 64x48"):
        read_video(tmp_path)
    with pytest.raises(DataFormatError, match="path: no such video file"):
        read_video(tmp_path / "missing.mp4")


def test_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "text.mp4"
    path.write_text("hello, not a video")
    with pytest.raises(DataFormatError, match=r"text\.mp4: container: not a video file"):
        read_video(path)


def test_file_without_a_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    with pytest.raises(DataFormatError, match=r"sound\.wav: streams: the file holds no video stream"):
        read_video(path)


def test_video_with_no_decodable_frame(tmp_path):
    data = bytearray(write_mp4(tmp_path / "ok.mp4", _frames()).read_bytes())
    at = data.find(b"mdat")
    size = struct.unpack(">I", data[at - 4:at])[0]
    data[at + 4:at - 4 + size] = bytes(size - 8)  # zero the coded picture data, keep the index
    (tmp_path / "zeroed.mp4").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"zeroed\.mp4: video stream: no decodable frame"):
        read_video(tmp_path / "zeroed.mp4")


def test_video_of_an_unknown_codec(tmp_path):
    data = bytearray(write_mp4(tmp_path / "ok.mp4", _frames()).read_bytes())
    data = bytearray(bytes(data).replace(b"mp4v", b"zzzz"))
    esds = data.find(b"esds")
    config = data.find(bytes([0x04]), esds + 12)  # DecoderConfigDescriptor: tag, 4 length bytes, object type
    data[config + 5] = 0xC0  # a user-private object type: no FFmpeg decoder
    (tmp_path / "odd.mp4").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"odd\.mp4: codec: FFmpeg has no decoder"):
        read_video(tmp_path / "odd.mp4")
