"""The committed notebooks carry their cpu-profile outputs; ``refresh_committed`` writes them there."""
import base64
import json

import nbformat
import pytest

from tagvis_lib.errors import TagvisError
from tagvis_lib.notebook.reproduce import NOTEBOOKS_DIR, list_notebooks, refresh_committed

#: Largest committed notebook, bytes: figures as PNG, no progress bars (06, with Figs. 5-6 and the viewer, is 3.3 MB).
MAX_NOTEBOOK_BYTES = 4_000_000


def _notebook(tmp_path, name, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[1].metadata["tags"] = ["parameters"]
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def _executed(tmp_path, source, outputs):
    nb = nbformat.read(str(source), as_version=4)
    injected = nbformat.v4.new_code_cell("profile = 'cpu'")
    injected.metadata["tags"] = ["injected-parameters"]
    injected.outputs = [nbformat.v4.new_output("stream", name="stdout", text="injected\n")]
    nb.cells.insert(2, injected)
    code = [c for c in nb.cells if c.cell_type == "code" and c is not injected]
    for n, (cell, out) in enumerate(zip(code, outputs), start=1):
        cell.execution_count = n
        cell.outputs = out
    path = tmp_path / ("ran_" + source.name)
    nbformat.write(nb, str(path))
    return path


def test_refresh_copies_outputs_without_the_injected_cell_and_with_relative_paths(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    source = _notebook(root / "notebooks", "01_x.ipynb", ["profile = 'smoke'", "print(run_dir)", "show()"])
    png = base64.b64encode(b"\x89PNG fake").decode()
    executed = _executed(tmp_path, source, [
        [],
        [nbformat.v4.new_output("stream", name="stdout", text=f"run directory {root}/runs/cpu\n")],
        [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": f"<Figure at {root}/figures>"})],
    ])
    refresh_committed(executed, source, root=root)
    nb = nbformat.read(str(source), as_version=4)
    assert [c.source for c in nb.cells] == ["# title", "profile = 'smoke'", "print(run_dir)", "show()"]  # source kept
    assert nb.cells[1].metadata["tags"] == ["parameters"]
    assert [c.execution_count for c in nb.cells[1:]] == [1, 2, 3]
    assert nb.cells[2].outputs[0]["text"] == "run directory ../runs/cpu\n"
    assert nb.cells[3].outputs[0]["data"] == {"image/png": png, "text/plain": "<Figure at ../figures>"}
    assert "injected" not in source.read_text()


def test_refresh_refuses_a_notebook_that_changed_since_it_ran(tmp_path):
    source = _notebook(tmp_path, "01_x.ipynb", ["a = 1", "print(a)"])
    executed = _executed(tmp_path, source, [[], [nbformat.v4.new_output("stream", name="stdout", text="1\n")]])
    nb = nbformat.read(str(source), as_version=4)
    nb.cells[2].source = "print(a + 1)"
    nbformat.write(nb, str(source))
    before = source.read_bytes()
    with pytest.raises(TagvisError, match="differ from the executed copy"):
        refresh_committed(executed, source)
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["01_x.ipynb", "ran_01_x.ipynb"]


@pytest.mark.parametrize("path", list_notebooks(NOTEBOOKS_DIR), ids=lambda p: p.name[:2])
def test_committed_notebooks_open_with_their_cpu_profile_results(path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "every code cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = json.dumps(outputs)
    assert str(NOTEBOOKS_DIR.parent) not in text  # no absolute path of the machine that ran it
    assert "it/s]" not in text and "cell/s]" not in text  # no progress bars
    assert "profile 'cpu'" in text  # the set-up line says which profile produced the outputs
    shown = [o for o in outputs if {"image/png", "text/markdown"} & set(o.get("data", {}))]
    assert shown, "a chapter shows its figures (PNG) or tables (Markdown)"


@pytest.mark.parametrize("argv, expected", [([], None), (["--no-refresh"], False)])
def test_reproduce_command_passes_no_refresh(monkeypatch, argv, expected):
    import argparse

    from tagvis_lib.cli import reproduce as cli

    seen = {}

    def fake(*args, refresh=None):
        seen["refresh"] = refresh
        return []

    monkeypatch.setattr("tagvis_lib.notebook.reproduce.reproduce", fake)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["reproduce", "--profile", "cpu", *argv])
    assert args.func(args) == 0 and seen == {"refresh": expected}
