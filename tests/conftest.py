"""Fixtures shared by every test area."""
import pytest

#: Arguments of the tiny synthetic benchmark written once per test session.
SYNTH_ARGS = {"n_train": 4, "n_valid": 2, "n_test": 2, "seed": 0, "height": 48, "width": 80}


@pytest.fixture(scope="session")
def synth_benchmark(tmp_path_factory):
    """Paths (the dict of ``write_benchmark``, plus ``["args"]``: its arguments) of a tiny synthetic benchmark: 4 train, 2 valid and 2 test videos
    of 48x80 (lengths 18..84 frames), in YouTube-VIS (``["ytvis"]``) and DAVIS (``["davis"]``) layout.
    Read-only: tests that modify files copy it first."""
    from tagvis_lib.data.synth import write_benchmark

    paths = write_benchmark(tmp_path_factory.mktemp("synth"), **SYNTH_ARGS)
    return {**paths, "args": dict(SYNTH_ARGS)}
