"""Every notebook executes at the smoke profile through papermill, each in its own run directory, and
the tables they write hold every row of the paper's table and the numbers of the same run."""
import json
import subprocess
import sys

import nbformat
import pytest

from tagvis_lib.ablations import PAPER_TABLE3, TABLE3_ABLATIONS
from tagvis_lib.notebook.reporting import PAPER_TABLE1_ROWS, PAPER_TABLE2_ROWS, read_table
from tagvis_lib.notebook.reproduce import NOTEBOOKS_DIR, NotebookFailed, list_notebooks, reproduce

pytestmark = pytest.mark.notebooks


def run(tmp_path, prefix):
    """Execute the notebook ``prefix`` alone at the smoke profile; return (run_dir, figures_dir, executed)."""
    runs = reproduce("smoke", tmp_path / "runs", tmp_path / "figures", notebooks=[prefix], progress=False)
    assert [r.notebook[:2] for r in runs] == [prefix]
    return tmp_path / "runs" / "smoke", tmp_path / "figures", nbformat.read(runs[0].output, as_version=4)


def assert_figures(figures, *names):
    for name in names:
        assert (figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
        assert (figures / f"{name}.pdf").read_bytes()[:4] == b"%PDF", name


def pct(value):
    """How a 0-1 metric appears in the tables' CSV ('' where undefined, as the evaluators give -1)."""
    return "" if value < 0 else str(round(100 * value, 1))


def paper_rows_match(rows, paper, columns):
    got = [r for r in rows if r["Source"] == "paper"]
    assert [r["Method"] for r in got] == list(paper)
    for row, values in zip(got, paper.values()):
        assert [row[c] for c in columns] == ["" if v is None else str(v) for v in values]


def test_the_six_chapters_exist_with_a_parameters_cell_first():
    names = [p.name for p in list_notebooks(NOTEBOOKS_DIR)]
    assert [n[:2] for n in names] == ["01", "02", "03", "04", "05", "06"]
    for path in list_notebooks(NOTEBOOKS_DIR):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        for name in ("profile", "run_dir", "figures_dir", "device", "ytvis_root", "davis_root", "seed"):
            assert f"{name} = " in code[0].source, (path.name, name)
        assert nb.metadata["kernelspec"]["name"] == "python3"


def test_01_data(tmp_path):
    committed = (NOTEBOOKS_DIR / "01_data.ipynb").read_bytes()
    run_dir, figures, nb = run(tmp_path, "01")
    assert (NOTEBOOKS_DIR / "01_data.ipynb").read_bytes() == committed  # smoke never rewrites the committed copy
    assert json.loads((run_dir / "data" / "benchmark.json").read_text())["n_train"] == 4
    assert_figures(figures, "data_video", "clip_sampling")
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert '"same_category_pairs"' in text  # the data-check lines


def test_02_model_and_loss(tmp_path):
    _, figures, nb = run(tmp_path, "02")
    assert_figures(figures, "tagging_terms")
    markdown = [o["data"]["text/markdown"] for c in nb.cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert any("| encoder.layer4 |" in m for m in markdown) and any("`loss.margin`" in m for m in markdown)


def test_03_training(tmp_path):
    run_dir, figures, _ = run(tmp_path, "03")
    assert (run_dir / "train" / "model_final.pt").exists()
    lines = [json.loads(l) for l in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if l["event"] == "train"][-1] == 4  # the smoke profile's max_steps
    assert_figures(figures, "loss_curves")


def test_04_evaluation_tables_hold_the_paper_rows_and_this_runs_numbers(tmp_path):
    from tagvis_lib.metrics import evaluate_ytvis

    run_dir, figures, _ = run(tmp_path, "04")
    raw = json.loads((run_dir / "eval" / "metrics.json").read_text())
    table1 = read_table(figures / "table1.csv")
    paper_rows_match(table1, PAPER_TABLE1_ROWS, ["mAP", "AP@50", "AP@75", "AR@1", "AR@10"])
    (ours,) = [r for r in table1 if r["Source"] == "measured"]
    metrics = raw["table1"]["metrics"]
    assert [ours[c] for c in ("mAP", "AP@50", "AP@75", "AR@1", "AR@10")] == [
        pct(metrics[k]) for k in ("AP", "AP50", "AP75", "AR1", "AR10")]
    # The numbers come from this run's results file.
    results = json.loads(open(raw["table1"]["results"]).read())
    assert raw["table1"]["split"] == "test"  # Tables I-II report the split no choice has seen
    assert evaluate_ytvis(run_dir / "data" / "ytvis" / "test.json", results)["AP"] == pytest.approx(metrics["AP"])
    table2 = read_table(figures / "table2.csv")
    paper_rows_match(table2, PAPER_TABLE2_ROWS, ["J&F", "J-Mean", "F-Mean", "video fps"])
    (ours,) = [r for r in table2 if r["Source"] == "measured"]
    davis = raw["table2"]
    assert [ours[c] for c in ("J&F", "J-Mean", "F-Mean")] == [pct(davis["metrics"][k]) for k in ("J&F-Mean", "J-Mean", "F-Mean")]
    assert float(ours["video fps"]) == round(davis["video_fps"], 1) and ours["Device"] == davis["device"]
    assert float(ours["network fps"]) == round(davis["network_fps"], 1)
    diagnosis = raw["diagnosis"]
    assert set(diagnosis) == {"train", "valid", "test"}
    for split, summary in diagnosis.items():
        errors = sum(summary[k] for k in ("merged", "split", "missed", "poor_mask"))
        assert errors == summary["tracks"] - round(summary["matched (IoU>=0.5)"] * summary["tracks"])
    for name, rows in (("table1", table1), ("table2", table2)):
        markdown = (figures / f"{name}.md").read_text()
        assert all(f"| {r['Method']} | {r['Source']} |" in markdown for r in rows)


def test_05_ablations_every_row_with_the_same_budget(tmp_path):
    from tagvis_lib.notebook.reporting import paired_differences

    run_dir, figures, _ = run(tmp_path, "05")
    records = json.loads((run_dir / "ablations" / "results.json").read_text())
    assert sorted(r["row"] for r in records) == sorted(TABLE3_ABLATIONS)  # one seed at smoke
    assert len({r["steps"] for r in records}) == 1 and {r["eval_split"] for r in records} == {"test-dev"}
    table = read_table(figures / "table3.csv")
    assert [r["w/o"] for r in table] == list(TABLE3_ABLATIONS)
    by_row = {r["row"]: r for r in records}
    stats = paired_differences(records)
    for row in table:
        assert float(row["J&F (paper)"]) == PAPER_TABLE3[row["w/o"]][0]
        measured = by_row[row["w/o"]]["metrics"]
        assert [row[c] for c in ("J&F", "J-Mean", "F-Mean")] == [pct(measured[k]) for k in ("J&F-Mean", "J-Mean", "F-Mean")]
        assert row["seeds"] == "1" and row["J&F 95% CI"] == ""  # one seed: no interval
        if row["w/o"] != "Ours":
            assert row["differs"] == "-" and float(row["ΔJ&F vs Ours"]) == round(100 * stats[row["w/o"]]["diff"], 1)
    assert_figures(figures, "table3", "budget_curve")
    curve = sorted((run_dir / "ablations").glob("budget_*/ours/seed0/result.json"))
    assert [p.parts[-4] for p in curve] == ["budget_1", "budget_2", "budget_full"]
    assert {json.loads(p.read_text())["eval_split"] for p in curve} == {"val"}  # chosen on valid


def test_06_qualitative_figures_and_static_viewer(tmp_path):
    _, figures, nb = run(tmp_path, "06")
    assert_figures(figures, "fig5_instances", "fig6_semantic", "tag_histogram", "tag_distances")
    assert (figures / "overlay.gif").read_bytes()[:3] == b"GIF"
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("image/png" in o.get("data", {}) for o in last.outputs)  # headless: static images


def test_tagvis_reproduce_command_runs_one_notebook(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tagvis_lib", "reproduce", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
         "--figures", str(tmp_path / "figures"), "--only", "01"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert line["notebook"] == "01_data.ipynb"
    assert (tmp_path / "runs" / "smoke" / "notebooks" / "01_data.ipynb").exists()
    assert (tmp_path / "figures" / "clip_sampling.png").exists()


def test_a_failing_notebook_stops_the_run_naming_notebook_and_cell(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    broken = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom in ' + profile)"),
    ])
    after = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"open({str(tmp_path / 'ran')!r}, 'w').close()")])
    for nb, name in ((broken, "01_broken.ipynb"), (after, "02_after.ipynb")):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, notebooks / name)
    with pytest.raises(NotebookFailed) as info:
        reproduce("smoke", tmp_path / "runs", tmp_path / "figures", notebooks_dir=notebooks, progress=False)
    message = str(info.value)
    assert info.value.cell_index == 2  # the failing cell's index in the source notebook
    assert message.startswith("01_broken.ipynb: cell 2 (0-based, as in the source notebook): ValueError: boom in smoke")
    out_dir = tmp_path / "runs" / "smoke" / "notebooks"
    assert sorted(p.name for p in out_dir.iterdir()) == ["01_broken.failed.ipynb"]  # no half-executed output
    assert info.value.output == out_dir / "01_broken.failed.ipynb"
    executed = nbformat.read(out_dir / "01_broken.failed.ipynb", as_version=4)
    failed = [c for c in executed.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert [c.source for c in failed] == ["raise ValueError('boom in ' + profile)"]  # kept with its traceback
    assert not (tmp_path / "ran").exists()  # the run stopped there


def test_reproduce_only_with_no_matching_notebook_is_refused(tmp_path):
    from tagvis_lib.errors import TagvisError

    with pytest.raises(TagvisError, match="--only zz99: no notebook"):
        reproduce("smoke", tmp_path / "runs", tmp_path / "figures", notebooks=["zz99"], progress=False)
    assert not (tmp_path / "runs").exists()
