"""Run every notebook in order through papermill: the package's main job.

``reproduce(profile)`` executes ``notebooks/NN_*.ipynb`` into ``runs/<profile>/notebooks/`` with the
parameters ``profile``, ``run_dir`` (``runs/<profile>``), ``figures_dir`` and ``device``; the notebooks
write their figures (PNG and PDF) and tables (Markdown and CSV) to ``figures_dir`` through
:mod:`tagvis_lib.notebook.reporting` and :mod:`tagvis_lib.notebook.figures`. The first failing notebook stops the run with
a :class:`NotebookFailed` naming the notebook and the cell.

At the profile of :data:`COMMITTED_PROFILE` (``make reproduce``) each notebook that completes also
refreshes the outputs of its committed copy in ``notebooks/`` (:func:`refresh_committed`), so the
chapters open with their results; no other profile (CI runs smoke) touches them.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TagvisError

#: The repository's notebooks folder (the package is installed editable from the repository).
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: The profile whose outputs the committed notebooks carry.
COMMITTED_PROFILE = "cpu"


class NotebookFailed(TagvisError):
    """A notebook raised in one of its cells."""

    def __init__(self, notebook: Path, cell_index: int, ename: str, evalue: str, output: Path):
        self.notebook, self.cell_index, self.output = notebook, cell_index, output
        super().__init__(
            f"{notebook.name}: cell {cell_index} (0-based, as in the source notebook): {ename}: {evalue} (executed notebook kept at {output})"
        )


@dataclass
class NotebookRun:
    """What one executed notebook took."""

    notebook: str
    output: str
    seconds: float


def _injected(cell: dict) -> bool:
    """Whether ``cell`` is the parameters cell papermill injects."""
    return "injected-parameters" in cell.get("metadata", {}).get("tags", [])


def source_cell_index(executed: Path, index: int) -> int:
    """Index in the source notebook of cell ``index`` of the executed one (papermill injects a cell)."""
    import nbformat

    cells = nbformat.read(str(executed), as_version=4).cells[:index]
    return index - sum(_injected(c) for c in cells)


def refresh_committed(executed: str | os.PathLike, source: str | os.PathLike,
                      root: str | os.PathLike | None = None) -> None:
    """Copy the outputs and execution counts of ``executed`` into the cells of ``source`` (in place).

    ``executed`` is papermill's output of ``source``: the same cells plus the injected parameters
    cell, which is left out. Absolute paths under ``root`` (default: the repository) in text outputs
    are written relative to ``source``'s folder. Refuses (:class:`TagvisError`) when a cell's source
    differs, i.e. the notebook changed since it ran. The file is replaced atomically.
    """
    import nbformat

    from ..utils.atomic import atomic_path

    executed, source = Path(executed), Path(source)
    ran = [c for c in nbformat.read(str(executed), as_version=4).cells if not _injected(c)]
    nb = nbformat.read(str(source), as_version=4)
    if [c.source for c in ran] != [c.source for c in nb.cells]:
        raise TagvisError(f"{source}: its cells differ from the executed copy {executed}; run it again")
    base = str(Path(root).resolve() if root is not None else NOTEBOOKS_DIR.parent)
    rel = os.path.relpath(base, source.parent.resolve())
    for cell, done in zip(nb.cells, ran):
        if cell.cell_type != "code":
            continue
        cell.execution_count = done.get("execution_count")
        cell.outputs = [_relative_paths(o, base, rel) for o in done.get("outputs", [])]
    with atomic_path(source) as tmp:
        nbformat.write(nb, str(tmp))


def _relative_paths(output: dict, base: str, rel: str) -> dict:
    """``output`` with ``base`` written as ``rel`` in its text and text-like data."""
    def fix(value: object) -> object:
        if isinstance(value, str):
            return value.replace(base, rel)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    if "text" in output:
        output["text"] = fix(output["text"])
    for key, value in output.get("data", {}).items():
        if key.startswith("text/") or key == "application/json":
            output["data"][key] = fix(value)
    return output


def list_notebooks(notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) in order."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise TagvisError(f"{notebooks_dir}: no notebooks named NN_*.ipynb")
    return found


def reproduce(
    profile: str = "cpu",
    run_root: str | os.PathLike = "runs",
    figures_dir: str | os.PathLike = "figures",
    device: str = "auto",
    notebooks: list[str] | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    progress: bool = True,
    refresh: bool | None = None,
) -> list[NotebookRun]:
    """Execute the notebooks in order at ``profile``; return what each took.

    ``notebooks`` optionally restricts the run to notebooks whose file name starts with one of the
    given prefixes (e.g. ``["01", "02"]``). ``refresh`` (default: ``profile`` is
    :data:`COMMITTED_PROFILE`) writes each completed notebook's outputs into its source
    (:func:`refresh_committed`).
    """
    chosen = list_notebooks(notebooks_dir)
    if notebooks is not None:
        unknown = [n for n in notebooks if not any(p.name.startswith(n) for p in chosen)]
        if unknown or not notebooks:
            names = ", ".join(p.name for p in chosen)
            raise TagvisError(f"--only {' '.join(unknown) or '(nothing)'}: no notebook of {notebooks_dir} starts with "
                              f"{'it' if len(unknown) == 1 else 'them'}; the notebooks are {names}")
        chosen = [p for p in chosen if any(p.name.startswith(n) for n in notebooks)]
    import papermill
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(run_root).resolve() / profile
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    figures_dir = Path(figures_dir).resolve()
    figures_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "run_dir": str(run_dir), "figures_dir": str(figures_dir), "device": device}
    runs = []
    for nb in chosen:
        output = out_dir / nb.name
        partial = out_dir / f".{nb.stem}.partial.ipynb"  # renamed into place when complete: never half an output
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb), str(partial), parameters=params, kernel_name="python3",
                cwd=str(nb.parent), progress_bar=progress,
            )
        except PapermillExecutionError as exc:
            failed = output.with_suffix(".failed.ipynb")
            os.replace(partial, failed)
            raise NotebookFailed(nb, source_cell_index(failed, exc.cell_index), exc.ename, exc.evalue, failed) from None
        os.replace(partial, output)
        output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
        if refresh if refresh is not None else profile == COMMITTED_PROFILE:
            refresh_committed(output, nb)
        runs.append(NotebookRun(nb.name, str(output), time.perf_counter() - start))
    return runs
