"""The textured style of the synthetic benchmark: natural-image textures, a moving camera, empty frames.

``make_textured_video(split, index, seed, height, width)`` draws one video as a :class:`SynthVideo`
(``tagvis synth --style textured``; :func:`tagvis_lib.data.synth.write_benchmark` writes it in both
published layouts). Each video comes from ``numpy.random.default_rng([seed, 100 + split code, index])``:

- textures: crops of the natural photographs that scikit-image (``skimage/data``) and matplotlib
  (``mpl-data/sample_data``) install (:data:`TEXTURE_FILES`), under a random hue rotation,
  saturation, brightness and (for grey images) tint. Nothing is downloaded. As in real video, a
  category has its own kinds of surface and the scene others: each category draws its textures
  from two photographs of :data:`OBJECT_TEXTURES`, the background from :data:`BACKGROUND_TEXTURES`.
  Instances of a category differ in crop, scale, orientation and colour, so colour does not give
  the category; shape and surface texture do;
- background: one texture seen out of focus (Gaussian blur, lowered contrast), through a camera
  that pans and zooms (zoom factor exp(U(-0.35, 0.35)) over the video); in half of the videos it
  whips away from the objects for a stretch of 20-35% of the frames and back, so those frames show
  no object;
- 1..5 instances of the 5 shape :data:`CATEGORIES` (the simple style's shapes). After the first, an instance repeats an earlier category with probability 0.5 and then, with
  probability 0.6, moves glued to that instance (offset 0.85-1.0 times the sum of the radii), so
  same-category instances touch for long stretches;
- motion: "stay", "enter", "leave", "cross" and "return" (goes out of the frame and comes back);
  radius change exp(U(-0.6, 0.6)) on top of the zoom, rotation, a random depth order (nearer
  instances occlude farther ones; masks are the visible parts);
- frame size: ``height`` x ``width`` scaled per video by U(0.85, 1) in each direction (even sizes);
- length as in the simple style (18-31, 65-84 or 32-64 frames by ``index % 4``); frame 0 always
  shows an instance (the DAVIS evaluation takes its objects from it).
"""
from __future__ import annotations

import colorsys
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import TagvisError
from .synth import CATEGORIES, SPLITS, SynthVideo, assemble_video, shape_mask

#: Natural images the texture pool is cut from: (package, file) under ``skimage/data`` or matplotlib's sample data.
TEXTURE_FILES = (
    ("skimage", "astronaut.png"), ("skimage", "chelsea.png"), ("skimage", "coffee.png"),
    ("skimage", "rocket.jpg"), ("skimage", "hubble_deep_field.jpg"), ("skimage", "retina.jpg"),
    ("skimage", "motorcycle_left.png"), ("skimage", "ihc.png"), ("skimage", "brick.png"),
    ("skimage", "grass.png"), ("skimage", "gravel.png"), ("skimage", "camera.png"),
    ("skimage", "moon.png"), ("skimage", "coins.png"), ("skimage", "page.png"),
    ("matplotlib", "grace_hopper.jpg"), ("matplotlib", "Minduka_Present_Blue_Pack.png"),
)
#: Category name -> the indices into :data:`TEXTURE_FILES` its instances take their surface from.
OBJECT_TEXTURES = {"disc": (1, 13), "square": (8, 14), "triangle": (2, 5), "ring": (7, 6), "cross": (15, 16)}
#: Indices into :data:`TEXTURE_FILES` of the scenes backgrounds are cut from (no object texture among them).
BACKGROUND_TEXTURES = (0, 3, 4, 9, 10, 11, 12)
_MODES = ("stay", "enter", "leave", "cross", "return")
_MODE_P = (0.3, 0.2, 0.15, 0.15, 0.2)
_SPLIT_OFFSET = 100  # keeps the textured streams apart from the simple style's


def _package_dir(package: str) -> Path:
    if package == "skimage":
        try:
            import skimage
        except ImportError as exc:
            raise TagvisError("the textured style needs scikit-image (pip install scikit-image): "
                              "its textures are the photographs scikit-image installs") from exc
        return Path(skimage.__file__).parent / "data"
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


@lru_cache(maxsize=1)
def texture_pool(max_side: int = 320) -> tuple[np.ndarray, ...]:
    """The :data:`TEXTURE_FILES` as float32 RGB arrays ``(h, w, 3)`` in 0..255, longest side ``max_side``."""
    images = []
    for package, name in TEXTURE_FILES:
        path = _package_dir(package) / name
        if not path.is_file():
            raise TagvisError(f"{path}: texture image missing from the installed {package}")
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max_side / max(im.size)
            if scale < 1:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
            images.append(np.asarray(im, dtype=np.float32))
    return tuple(images)


def _colour_transform(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A random 3x3 matrix and offset (RGB -> RGB): hue rotation, saturation, gain; grey images tinted."""
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)
    angle, sat, gain = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5), rng.uniform(0.7, 1.25)
    rot = np.array([[1, 0, 0], [0, np.cos(angle) * sat, -np.sin(angle) * sat],
                    [0, np.sin(angle) * sat, np.cos(angle) * sat]], dtype=np.float32)
    matrix = gain * np.linalg.inv(yiq) @ rot @ yiq
    offset = np.zeros(3, dtype=np.float32)
    chroma = np.abs(image[..., 0] - image[..., 2]).mean() + np.abs(image[..., 0] - image[..., 1]).mean()
    if chroma < 4:  # a grey photograph: tint it
        tint = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.8), 1.0), dtype=np.float32)
        matrix = gain * np.diag(tint) @ np.full((3, 3), 1 / 3, dtype=np.float32)
        offset = rng.uniform(-20, 20, 3).astype(np.float32)
    return matrix.astype(np.float32), offset


def _sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` (h, w, 3) at float coordinates (mirrored outside): (*rows.shape, 3)."""
    coords = np.stack([rows.ravel(), cols.ravel()])
    out = [ndimage.map_coordinates(image[..., c], coords, order=1, mode="mirror") for c in range(3)]
    return np.stack(out, axis=-1).reshape(*rows.shape, 3)


def _camera(rng: np.random.Generator, height: int, width: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World position of the frame centre ``(T, 2)``, zoom ``(T,)`` and the frames the camera looks away ``(T,)``."""
    s = np.linspace(0, 1, length)
    start = np.array([height / 2, width / 2])
    end = start + rng.uniform(-0.2, 0.2, 2) * (height, width)
    centre = start + s[:, None] * (end - start)
    zoom = np.exp(rng.uniform(-0.35, 0.35) * s)
    away = np.zeros(length)
    if rng.random() < 0.5 and length >= 12:
        first = int(rng.uniform(0.3, 0.6) * length)
        hold = max(2, int(rng.uniform(0.2, 0.35) * length))
        ramp = np.clip(np.minimum(np.arange(length) - first + 3, first + hold - np.arange(length) + 3) / 3, 0, 1)
        away = ramp
        centre = centre + away[:, None] * np.array([0.0, rng.choice([-1.0, 1.0]) * 4.0 * width])
    return centre, zoom, away


def _trajectory(rng: np.random.Generator, mode: str, height: int, width: int, radius: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """World centre rows and columns ``(T,)`` of one instance for its motion ``mode``."""
    s = np.linspace(0, 1, length)
    reach = width / 2 + radius + rng.uniform(0.1, 0.5) * width  # centre distance beyond a side edge
    side = rng.choice([-1.0, 1.0])
    inside = lambda: rng.uniform(0.2, 0.8) * width  # noqa: E731
    if mode == "stay":
        x = inside() + (inside() - inside()) * 0.5 * s
    elif mode == "enter":
        x = width / 2 + side * reach + (inside() - width / 2 - side * reach) * np.minimum(s / rng.uniform(0.3, 0.7), 1)
    elif mode == "leave":
        x0, t0 = inside(), rng.uniform(0.3, 0.7)
        x = x0 + (width / 2 + side * reach - x0) * np.clip((s - t0) / (1 - t0), 0, 1)
    elif mode == "cross":
        x = width / 2 + side * reach - 2 * side * reach * s
    else:  # return: out through a side edge and back
        x0, mid, half = inside(), rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.3)
        bump = np.clip(1 - np.abs(s - mid) / half, 0, 1)
        x = x0 + (width / 2 + side * reach - x0) * np.minimum(bump * 1.6, 1)
    y0, y1 = rng.uniform(0.25, 0.75, 2) * height
    wobble = rng.uniform(0, 0.06) * height * np.sin(2 * np.pi * rng.uniform(0.5, 2) * s + rng.uniform(0, 2 * np.pi))
    return y0 + (y1 - y0) * s + wobble, x


def _draw_instances(rng: np.random.Generator, height: int, width: int, length: int) -> list[dict]:
    pool = texture_pool()
    count = int(rng.choice(5, p=[0.1, 0.25, 0.3, 0.2, 0.15])) + 1
    s = np.linspace(0, 1, length)
    instances: list[dict] = []
    for n in range(count):
        partner = None
        if instances and rng.random() < 0.5:
            partner = instances[int(rng.integers(len(instances)))]
            cat = partner["cat"]
        else:
            cat = int(rng.integers(len(CATEGORIES)))
        radius = rng.uniform(0.1, 0.2) * height * np.exp(rng.uniform(-0.6, 0.6) * s)
        if partner is not None and rng.random() < 0.6:  # glued to a same-category instance: they touch
            angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-1, 1) * s
            gap = (radius + partner["radius"]) * rng.uniform(0.85, 1.0)
            y, x, mode = partner["y"] + gap * np.sin(angle), partner["x"] + gap * np.cos(angle), "touch"
        else:
            mode = str(rng.choice(["stay", "leave", "return"], p=[0.7, 0.15, 0.15]) if n == 0 else rng.choice(_MODES, p=_MODE_P))
            y, x = _trajectory(rng, mode, height, width, float(radius.max()), length)
        choices = OBJECT_TEXTURES[CATEGORIES[cat]["name"]]
        image = pool[choices[int(rng.integers(len(choices)))]]
        matrix, offset = _colour_transform(rng, image)
        instances.append({
            "cat": cat, "category": CATEGORIES[cat]["id"], "shape": CATEGORIES[cat]["name"], "mode": mode,
            "y": y, "x": x, "radius": radius,
            "angle": rng.uniform(0, 2 * np.pi) + rng.uniform(-np.pi, np.pi) * s,
            "image": image, "matrix": matrix, "offset": offset,
            "anchor": rng.uniform(0.2, 0.8, 2) * image.shape[:2], "tex_scale": rng.uniform(15, 45),
            "tex_angle": rng.uniform(0, 2 * np.pi), "light": rng.uniform(0, 2 * np.pi),
        })
    depth = rng.permutation(count)  # instances[depth[0]] is the farthest
    return [instances[d] for d in depth]


def _background(rng: np.random.Generator) -> dict:
    pool = texture_pool()
    image = pool[BACKGROUND_TEXTURES[int(rng.integers(len(BACKGROUND_TEXTURES)))]]
    blurred = ndimage.gaussian_filter(image, sigma=(rng.uniform(0.8, 2.0),) * 2 + (0,))
    contrast = rng.uniform(0.55, 0.9)
    blurred = blurred.mean(axis=(0, 1)) + contrast * (blurred - blurred.mean(axis=(0, 1)))
    matrix, offset = _colour_transform(rng, image)
    return {"image": blurred.astype(np.float32), "matrix": matrix, "offset": offset,
            "anchor": rng.uniform(0.3, 0.7, 2) * image.shape[:2], "scale": rng.uniform(0.6, 1.3)}


def _colour(pixels: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return pixels @ matrix.T + offset


def make_textured_video(split: str, index: int, seed: int = 0, height: int = 120, width: int = 216) -> SynthVideo:
    """Draw and render textured video ``index`` of ``split`` ("train", "valid" or "test")."""
    rng = np.random.default_rng([seed, _SPLIT_OFFSET + SPLITS[split][0], index])
    kind = index % 4
    length = int(rng.integers(18, 32) if kind == 0 else rng.integers(65, 85) if kind == 1 else rng.integers(32, 65))
    h = max(16, 2 * round(height * rng.uniform(0.85, 1.0) / 2))
    w = max(16, 2 * round(width * rng.uniform(0.85, 1.0) / 2))
    background = _background(rng)
    while True:
        centre, zoom, _ = _camera(rng, h, w, length)
        instances = _draw_instances(rng, h, w, length)
        video = _render(f"{split}{index:04d}", rng, background, instances, centre, zoom, h, w)
        if video.present[:, 0].any():
            return video


def _render(name: str, rng: np.random.Generator, background: dict, instances: list[dict],
            centre: np.ndarray, zoom: np.ndarray, height: int, width: int) -> SynthVideo:
    length, count = len(zoom), len(instances)
    frames = np.empty((length, height, width, 3), dtype=np.uint8)
    labels = np.zeros((length, height, width), dtype=np.int16)
    amodal = np.zeros((count, length))
    view_y, view_x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    bg = background
    for t in range(length):
        world_y = centre[t, 0] + (view_y - height / 2) / zoom[t]
        world_x = centre[t, 1] + (view_x - width / 2) / zoom[t]
        frame = _colour(_sample(bg["image"], bg["anchor"][0] + world_y * bg["scale"], bg["anchor"][1] + world_x * bg["scale"]),
                        bg["matrix"], bg["offset"])
        for k, inst in enumerate(instances):  # far to near
            r = inst["radius"][t]
            cy = (inst["y"][t] - centre[t, 0]) * zoom[t] + height / 2
            cx = (inst["x"][t] - centre[t, 1]) * zoom[t] + width / 2
            rv = r * zoom[t]
            y0, y1 = max(int(cy - rv) - 1, 0), min(int(cy + rv) + 2, height)
            x0, x1 = max(int(cx - rv) - 1, 0), min(int(cx + rv) + 2, width)
            if y0 >= y1 or x0 >= x1:
                continue
            dy = (world_y[y0:y1, x0:x1] - inst["y"][t]) / r
            dx = (world_x[y0:y1, x0:x1] - inst["x"][t]) / r
            th = inst["angle"][t]
            u, v = dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)
            inside = shape_mask(inst["shape"], u, v)
            amodal[k, t] = inside.sum()
            if not inside.any():
                continue
            a = inst["tex_angle"]
            rows = inst["anchor"][0] + inst["tex_scale"] * (u[inside] * np.sin(a) + v[inside] * np.cos(a))
            cols = inst["anchor"][1] + inst["tex_scale"] * (u[inside] * np.cos(a) - v[inside] * np.sin(a))
            texture = _colour(_sample(inst["image"], rows, cols), inst["matrix"], inst["offset"])
            light = inst["light"]
            shade = np.clip(1.0 + 0.25 * (u[inside] * np.cos(light) + v[inside] * np.sin(light)), 0.65, 1.35)
            frame[y0:y1, x0:x1][inside] = texture * shade[:, None]
            labels[t, y0:y1, x0:x1][inside] = k + 1
        frame += rng.normal(0, 3, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    colours = [np.clip(_colour(inst["image"].reshape(-1, 3).mean(0, keepdims=True), inst["matrix"], inst["offset"])[0], 0, 255)
               for inst in instances]
    return assemble_video(name, frames, labels, amodal, instances, [inst["radius"] * zoom for inst in instances], colours)
