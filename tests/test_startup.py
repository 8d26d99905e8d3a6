"""Start-up: which heavy modules each ``tagvis`` command loads, and the lazy public names."""
import importlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

#: Runs ``python -m tagvis_lib ARGS`` in this process, then writes its exit code and the names of
#: the loaded modules to the file named by the first argument.
PROBE = """
import json, runpy, sys
report, sys.argv = sys.argv[1], ["tagvis", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("tagvis_lib", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
finally:
    with open(report, "w") as fh:
        json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""

#: Top-level packages that no command without a network may load.
NO_NETWORK = ("torch",)
#: Top-level packages that ``tagvis --help`` and ``import tagvis_lib`` may not load.
HEAVY = ("torch", "av", "matplotlib", "scipy", "pycocotools", "PIL")

PACKAGES = ["tagvis_lib", "tagvis_lib.data", "tagvis_lib.model", "tagvis_lib.losses",
            "tagvis_lib.inference", "tagvis_lib.metrics", "tagvis_lib.training"]


def loaded(tmp_path, *args: str) -> set[str]:
    """Top-level packages loaded by ``tagvis ARGS`` (asserting exit code 0)."""
    report = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(report), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and report.is_file(), proc.stderr
    out = json.loads(report.read_text())
    assert out["code"] in (0, None), (out["code"], proc.stdout, proc.stderr)
    return {name.partition(".")[0] for name in out["modules"]}


@pytest.fixture(scope="module")
def ytvis_case(synth_benchmark, tmp_path_factory):
    """(ground truth, results) JSON paths: the valid split scored against itself."""
    gt_path = synth_benchmark["ytvis"] / "valid.json"
    gt = json.loads(gt_path.read_text())
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    res_path = tmp_path_factory.mktemp("ytvis_results") / "results.json"
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def test_help_loads_no_heavy_package(tmp_path):
    mods = loaded(tmp_path, "--help")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_import_loads_no_heavy_package():
    code = "import json, sys, tagvis_lib; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = {name.partition(".")[0] for name in json.loads(proc.stdout)}
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_evaluate_ytvis_without_torch(tmp_path, ytvis_case):
    gt, res = ytvis_case
    mods = loaded(tmp_path, "evaluate", "ytvis", str(gt), str(res))
    assert "pycocotools" in mods  # the probe ran the evaluation
    assert not mods & set(NO_NETWORK)


def test_evaluate_davis_without_torch(tmp_path, synth_benchmark):
    davis = synth_benchmark["davis"]
    results = davis / "Annotations_unsupervised" / "480p"  # the annotations as results
    mods = loaded(tmp_path, "evaluate", "davis", str(davis), str(results), "--set", "val")
    assert "PIL" in mods
    assert not mods & set(NO_NETWORK)
    assert "scipy" not in mods  # perfect results: the assignment is clear, scipy is not needed


@pytest.mark.parametrize("layout", ["ytvis", "davis"])
def test_data_check_without_torch(tmp_path, synth_benchmark, layout):
    split = {"ytvis": "valid", "davis": "val"}[layout]
    mods = loaded(tmp_path, "data-check", f"--{layout}", str(synth_benchmark[layout]), "--split", split)
    assert "PIL" in mods and not mods & set(NO_NETWORK)


def test_split_without_torch(tmp_path, synth_benchmark):
    root = tmp_path / "ytvis"
    shutil.copytree(synth_benchmark["ytvis"], root)
    mods = loaded(tmp_path, "split", str(root), "--holdout", "0.5")
    assert (root / "valid_sub.json").is_file() and not mods & set(NO_NETWORK)


def test_synth_without_torch(tmp_path):
    out = tmp_path / "bench"
    mods = loaded(tmp_path, "synth", str(out), "--train-videos", "1", "--valid-videos", "1",
                  "--height", "32", "--width", "48")
    assert (out / "ytvis" / "valid.json").is_file() and not mods & set(NO_NETWORK)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_and_is_listed(name):
    package = importlib.import_module(name)
    assert package.__all__ and len(set(package.__all__)) == len(package.__all__)
    listed = dir(package)
    for attr in package.__all__:
        assert getattr(package, attr) is not None, attr
        assert attr in listed, attr
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_subpackages_are_attributes_of_the_package():
    import tagvis_lib

    assert tagvis_lib.metrics is importlib.import_module("tagvis_lib.metrics")
    assert tagvis_lib.data.SYNTH_CATEGORIES is importlib.import_module("tagvis_lib.data.synth").CATEGORIES


def test_a_name_exported_twice_is_refused():
    from tagvis_lib.utils.lazy import lazy_exports

    with pytest.raises(ValueError, match="exported twice"):
        lazy_exports("tagvis_lib", {".config": ["ModelConfig"], ".errors": ["TagvisError as ModelConfig"]})


def test_clear_assignment_is_scipys_answer_and_ties_go_to_scipy():
    from scipy.optimize import linear_sum_assignment

    from tagvis_lib.metrics.assignment import clear_assignment, max_score_assignment

    rng = np.random.default_rng(0)
    clear = 0
    for trial in range(300):
        k = int(rng.integers(1, 6))
        p = int(rng.integers(k, 9))
        score = rng.random((p, k)) if trial % 3 else rng.integers(0, 3, (p, k)) / 2  # many ties
        rows, cols = linear_sum_assignment(-score)
        direct = clear_assignment(score)
        if direct is not None:
            clear += 1
            assert np.array_equal(direct[0], rows) and np.array_equal(direct[1], cols)
        got = max_score_assignment(score)
        assert np.array_equal(got[0], rows) and np.array_equal(got[1], cols)
    assert 0 < clear < 300
    assert clear_assignment(np.array([[0.5], [0.5]])) is None  # tied best proposal
    assert clear_assignment(np.array([[0.9, 0.8], [0.1, 0.2]])) is None  # shared best proposal


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_sets_the_glibc_thresholds():
    from tagvis_lib.utils.malloc import keep_freed_memory

    assert keep_freed_memory() is True
