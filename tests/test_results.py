"""Real-data figures: recorded during make test-real, collected into the committed file, and quoted correctly."""

import json
from pathlib import Path

import nbformat
import pytest

from medkit import results

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "docs" / "results" / "pneumoniamnist.json"


def test_record_does_nothing_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    results.record("07.vit_train_auc", "0.981 ± 0.003")
    assert list(tmp_path.iterdir()) == []


def test_record_adds_to_the_file_and_replaces_a_key_recorded_again(tmp_path, monkeypatch):
    target = tmp_path / "recorded.json"
    monkeypatch.setenv(results.ENV, str(target))
    results.record("07.vit_train_auc", "0.981 ± 0.003")
    results.record("04.cnn_test_auc", " 0.969 ")
    results.record("07.vit_train_auc", "0.980 ± 0.004")
    assert json.loads(target.read_text(encoding="utf-8")) == {"07.vit_train_auc": "0.980 ± 0.004",
                                                               "04.cnn_test_auc": "0.969"}
    assert [p.name for p in tmp_path.iterdir()] == ["recorded.json"]  # no temporary file left behind


@pytest.mark.parametrize("key, figure, message", [("vit_auc", "0.9", "two digits"), ("07.ViT", "0.9", "two digits"),
                                                  ("07.vit", 0.9, "non-empty string"), ("07.vit", " ", "non-empty")])
def test_record_refuses_a_bad_key_or_figure(key, figure, message):
    with pytest.raises(ValueError, match=message):
        results.record(key, figure)


def test_collect_writes_the_figures_with_date_versions_and_checksum(tmp_path):
    recorded, data, out = tmp_path / "recorded.json", tmp_path / "data.npz", tmp_path / "out" / "real.json"
    recorded.write_text(json.dumps({"07.b": "2", "04.a": "1"}), encoding="utf-8")
    data.write_bytes(b"films")
    payload = results.collect(recorded, out, dataset=data)
    assert json.loads(out.read_text(encoding="utf-8")) == payload
    assert list(payload["figures"]) == ["04.a", "07.b"]  # sorted by notebook
    assert list(payload["notebooks"]) == ["04", "07"]
    run = payload["notebooks"]["07"]
    assert run["dataset"] == {"file": "data.npz", "md5": "4214c7121c87189f5f89a43d75da7143"}  # md5sum of b"films"
    assert run["versions"]["numpy"] and run["versions"]["python"] and len(run["date"]) == 10


def test_collect_replaces_the_figures_of_the_notebooks_run_again_and_keeps_the_others(tmp_path):
    recorded, data, out = tmp_path / "recorded.json", tmp_path / "data.npz", tmp_path / "real.json"
    data.write_bytes(b"films")
    out.write_text(json.dumps({"notebooks": {"04": {"date": "2026-01-01"}, "07": {"date": "2026-01-01"}},
                               "figures": {"04.a": "1", "07.b": "2", "07.gone": "3"}}), encoding="utf-8")
    recorded.write_text(json.dumps({"07.b": "2.5"}), encoding="utf-8")
    payload = results.collect(recorded, out, dataset=data)
    assert payload["figures"] == {"04.a": "1", "07.b": "2.5"}  # 07's figure no longer recorded is gone
    assert payload["notebooks"]["04"] == {"date": "2026-01-01"} and payload["notebooks"]["07"]["date"] != "2026-01-01"


def test_collect_without_recorded_figures_writes_nothing(tmp_path, capsys):
    out = tmp_path / "real.json"
    assert results.main([str(tmp_path / "none.json"), str(out), "--dataset", str(tmp_path)]) == 0
    assert not out.exists() and "no results written" in capsys.readouterr().err


def test_a_misquoted_or_unknown_figure_is_named():
    figures = {"07.vit_train_auc": "0.981 ± 0.003"}
    text = ("Right: 0.981 ± 0.003 (results: `07.vit_train_auc`). Wrong: 0.98 (results: `07.vit_train_auc`). "
            "Unknown: 0.5 (results: `07.nothing`).")
    problems = results.misquoted(text, figures)
    assert len(problems) == 2
    assert problems[0].startswith("07.vit_train_auc: the text before it should end with '0.981 ± 0.003'")
    assert problems[1].startswith("07.nothing: not in the results file")


def test_every_real_data_figure_a_notebook_cites_is_the_recorded_one():
    figures = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))["figures"] if RESULTS_FILE.is_file() else {}
    problems = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                problems += [f"{path.name}: {p}" for p in results.misquoted(cell.source, figures)]
    assert not problems, "\n".join(problems)
