"""Tables in the paper's layout hold every paper row and the measured numbers."""
from unittest import mock

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tagvis_lib.ablations import PAPER_TABLE3, TABLE3_ABLATIONS
from tagvis_lib.notebook.reporting import (
    PAPER_TABLE1_ROWS, PAPER_TABLE2_ROWS, TABLE1_COLUMNS, TABLE2_COLUMNS, TABLE3_COLUMNS,
    read_table, save_figure, table1_rows, table2_rows, table3_rows, write_table,
)


def test_table1_holds_paper_rows_and_measured_row(tmp_path):
    measured = {"AP": 0.4321, "AP50": 0.61, "AP75": 0.5, "AR1": 0.3, "AR10": 0.45}
    md, csv_path = write_table(table1_rows(measured), TABLE1_COLUMNS, tmp_path, "table1")
    rows = read_table(csv_path)
    assert [r["Method"] for r in rows[:-1]] == list(PAPER_TABLE1_ROWS)
    assert rows[-1]["Source"] == "measured" and float(rows[-1]["mAP"]) == 43.2
    assert rows[-2]["mAP"] == "51.2"
    assert "| tagvis (this run) | measured | 43.2 |" in md.read_text()


def test_table2_has_fps_and_device(tmp_path):
    m = {"J&F-Mean": 0.655, "J-Mean": 0.6, "F-Mean": 0.71}
    _, csv_path = write_table(table2_rows(m, video_fps=123.45, network_fps=45.67, device="cpu"), TABLE2_COLUMNS, tmp_path, "t2")
    rows = read_table(csv_path)
    assert [r["Method"] for r in rows[:-1]] == list(PAPER_TABLE2_ROWS)
    assert rows[-1]["video fps"] == "123.5" and rows[-1]["network fps"] == "45.7" and rows[-1]["Device"] == "cpu" and rows[-1]["J&F"] == "65.5"


def _records(values: dict[str, list[float]]) -> list[dict]:
    return [{"row": row, "seed": k, "metrics": {"J&F-Mean": v, "J-Mean": v - 0.05, "F-Mean": v + 0.05}}
            for row, vs in values.items() for k, v in enumerate(vs)]


def test_table3_every_paper_row_in_order_and_changes_with_the_run(tmp_path):
    records = _records({"Ours": [0.7], "L_spectra": [0.5]})
    rows = read_table(write_table(table3_rows(records), TABLE3_COLUMNS, tmp_path, "t3")[1])
    assert [r["w/o"] for r in rows] == list(TABLE3_ABLATIONS)
    by = {r["w/o"]: r for r in rows}
    assert float(by["Ours"]["J&F"]) == 70.0 and float(by["L_spectra"]["J&F"]) == 50.0
    assert by["Self-Attention"]["J&F"] == "" and by["Ours"]["seeds"] == "1"
    assert by["L_spectra"]["ΔJ&F vs Ours"] == "-20.0" and by["L_spectra"]["differs"] == "-"  # one pair: no interval
    assert float(by["Ours"]["J&F (paper)"]) == PAPER_TABLE3["Ours"][0]
    records[0]["metrics"]["J&F-Mean"] = 0.1
    rows2 = read_table(write_table(table3_rows(records), TABLE3_COLUMNS, tmp_path, "t3")[1])
    assert float({r["w/o"]: r for r in rows2}["Ours"]["J&F"]) == 10.0
    with pytest.raises(KeyError):
        table3_rows([{"row": "not a row", "seed": 0, "metrics": {"J&F-Mean": 0.1}}])


def test_paired_differences_by_hand():
    from scipy import stats

    from tagvis_lib.notebook.reporting import mean_interval, paired_differences

    # L_spectra is 0.1 below Ours on every seed, with seed noise of 0.2: a clear paired difference
    ours, worse = [0.5, 0.7, 0.6], [0.4, 0.6, 0.5]
    noisy = [0.55, 0.62, 0.7]  # differences -0.05 -0.08 +0.10: interval spans 0
    d = paired_differences(_records({"Ours": ours, "L_spectra": worse, "L_specter": noisy}))
    assert d["L_spectra"]["diff"] == pytest.approx(-0.1) and d["L_spectra"]["differs"] is True
    assert d["L_spectra"]["diff_high"] - d["L_spectra"]["diff_low"] == pytest.approx(0.0, abs=1e-12)
    diffs = np.array(noisy) - np.array(ours)
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert d["L_specter"]["diff_low"] == pytest.approx(diffs.mean() - half) and d["L_specter"]["differs"] is False
    assert d["Ours"]["seeds"] == [0, 1, 2] and "diff" not in d["Ours"]
    mean, low, high = mean_interval(ours)
    assert (d["Ours"]["mean"], d["Ours"]["low"], d["Ours"]["high"]) == (mean, low, high)
    assert mean_interval([0.3]) == (0.3, None, None)
    with pytest.raises(ValueError, match="twice"):
        paired_differences(_records({"Ours": [0.5]}) * 2)
    rows = {r["w/o"]: r for r in table3_rows(_records({"Ours": ours, "L_spectra": worse}))}
    assert rows["L_spectra"]["differs"] == "yes" and rows["L_spectra"]["seeds"] == 3
    assert rows["Ours"]["J&F 95% CI"] == f"[{100 * low:.1f}, {100 * high:.1f}]"


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png, pdf = save_figure(fig, tmp_path, "fig")
    first = pdf.read_bytes()
    with mock.patch("time.time", return_value=4e9):  # another day: an unchanged figure keeps its bytes
        save_figure(fig, tmp_path, "fig")
    plt.close(fig)
    assert png.read_bytes()[:4] == b"\x89PNG" and first[:4] == b"%PDF"
    assert pdf.read_bytes() == first
    assert not list(tmp_path.glob(".*tmp"))


def test_diagnosis_and_confusion_rows():
    import numpy as np

    from tagvis_lib.metrics.diagnostics import Diagnosis
    from tagvis_lib.notebook.reporting import confusion_rows, diagnosis_rows

    d = Diagnosis([1, 2], np.array([0.9, 0.2, 0.6]), np.array([1, 2, 2]), 0.5,
                  np.array([[1, 0, 0], [1, 0, 1]]), {"merged": 1, "split": 3, "missed": 0, "poor_mask": 0}, 2, 2)
    rows, columns = diagnosis_rows({"train": d, "valid": d}, {"train": 0.61, "valid": 0.4})
    assert columns[:3] == ["evaluated on", "AP", "tracks"] and [r["AP"] for r in rows] == [61.0, 40.0]
    assert [r["evaluated on"] for r in rows] == ["train", "valid"] and rows[0]["split"] == 3  # error kind kept apart
    assert rows[0]["matched (IoU>=0.5)"] == 0.667 and rows[0]["class accuracy of matched"] == 0.5
    rows, columns = confusion_rows(d, {1: "disc", 2: "square"})
    assert columns == ["ground truth", "disc", "square", "no match"]
    assert rows[1] == {"ground truth": "square", "disc": 1, "square": 0, "no match": 1}


def test_tables_one_and_two_give_the_mean_and_interval_over_seeds():
    from tagvis_lib.notebook.reporting import mean_interval

    runs = [{"AP": a, "AP50": 0.6, "AP75": 0.3, "AR1": 0.2, "AR10": 0.4} for a in (0.30, 0.36, 0.33)]
    ours = table1_rows(runs)[-1]
    _, low, high = mean_interval([0.30, 0.36, 0.33])
    assert ours["mAP"] == 33.0 and ours["seeds"] == 3 and ours["mAP 95% CI"] == f"[{100 * low:.1f}, {100 * high:.1f}]"
    assert table1_rows(runs[0])[-1]["mAP 95% CI"] is None and table1_rows(runs[0])[-1]["seeds"] == 1
    davis = [{"J&F-Mean": v, "J-Mean": v, "F-Mean": v} for v in (0.5, 0.7)]
    row = table2_rows(davis, 10.0, 20.0, "cpu")[-1]
    assert row["J&F"] == 60.0 and row["seeds"] == 2 and row["J&F 95% CI"].startswith("[")
