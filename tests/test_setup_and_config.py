"""medkit.setup(), profiles, dataset choice and the data directory."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import medkit
from medkit import config, data

ROOT = Path(__file__).resolve().parents[1]


def test_default_profile_and_dataset():
    assert config.profile().name == "cpu"
    assert config.dataset() == "phantom"


def test_environment_selects_profile_and_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDKIT_PROFILE", "GPU")
    monkeypatch.setenv("MEDKIT_DATASET", str(tmp_path))
    assert config.profile().image_size == 128
    assert config.dataset() == str(tmp_path.resolve())


def test_bad_profile_says_what_to_do(monkeypatch):
    monkeypatch.setenv("MEDKIT_PROFILE", "tpu")
    with pytest.raises(ValueError, match="expected one of cpu, gpu. Unset MEDKIT_PROFILE"):
        config.profile()


def test_bad_dataset_says_what_to_do():
    with pytest.raises(ValueError, match="neither one of phantom, pneumoniamnist, chestmnist"):
        config.dataset("pneumonia-mnist")


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDKIT_DATA_DIR", str(tmp_path / "here"))
    assert config.data_dir() == tmp_path / "here" and (tmp_path / "here").is_dir()


def test_data_dir_default_is_the_kits_cache(monkeypatch):
    monkeypatch.delenv("MEDKIT_DATA_DIR")
    assert config.data_dir() == ROOT / "datasets" / "cache"


def test_an_installed_kit_caches_in_the_user_folder(monkeypatch, tmp_path):
    # In site-packages a datasets/ folder may be another package's (Hugging Face's, on Colab).
    site = tmp_path / "site-packages"
    (site / "datasets").mkdir(parents=True)
    monkeypatch.delenv("MEDKIT_DATA_DIR")
    monkeypatch.setattr(config, "_KIT_ROOT", site)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert config.data_dir() == tmp_path / "cache" / "medkit"
    assert not (site / "datasets" / "cache").exists()


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    kit = tmp_path / "kit"
    (kit / "datasets").mkdir(parents=True)
    (kit / "pyproject.toml").touch()
    (kit / "datasets" / "cache").touch()  # a file where the folder should be: it cannot be created
    monkeypatch.delenv("MEDKIT_DATA_DIR")
    monkeypatch.setattr(config, "_KIT_ROOT", kit)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    with pytest.warns(UserWarning, match="cannot be written .* Set MEDKIT_DATA_DIR"):
        assert config.data_dir() == tmp_path / "tmp" / "medkit"


def test_an_unwritable_data_dir_from_the_environment_says_what_to_do(monkeypatch, tmp_path):
    (tmp_path / "a-file").touch()
    monkeypatch.setenv("MEDKIT_DATA_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(OSError, match="cannot be created .* set it to a folder you can write"):
        config.data_dir()


def test_load_uses_the_profile(monkeypatch):
    ds = data.load(sizes=(10, 4, 4))
    assert ds.name == "phantom" and ds.train.images.shape == (10, 64, 64)
    with pytest.raises(ValueError, match="only the phantom draws"):
        data.load("pneumoniamnist", labels="all")  # refused before any download


def test_setup_prints_one_line_and_seeds(capsys):
    cfg = medkit.setup(seed=7)
    line = capsys.readouterr().out.splitlines()[0]  # tests import TensorFlow first, so a note may follow
    assert "profile cpu" in line and "dataset phantom" in line and "TensorFlow" in line
    first = np.random.rand(3)
    medkit.setup(seed=7, verbose=False)
    assert np.array_equal(first, np.random.rand(3))
    assert cfg.seed == 7 and cfg.profile.name == "cpu" and "CPU" in cfg.devices


def test_setup_leaves_a_fresh_process_without_stderr_noise():
    """What a notebook's first cell shows: one line on stdout, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "MEDKIT_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import medkit; medkit.setup(); import tensorflow as tf; tf.constant(1.0) + 1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("medkit ")


def test_import_changes_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    code = "import os, sys, medkit, medkit.data; print('tensorflow' in sys.modules, 'TF_CPP_MIN_LOG_LEVEL' in os.environ)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_quiet_hides_native_stderr_but_not_errors(capfd):
    import os

    import medkit

    with medkit.quiet():
        os.write(2, b"native notice\n")
    assert "native notice" not in capfd.readouterr().err
    with pytest.raises(RuntimeError, match="boom"):
        with medkit.quiet():
            os.write(2, b"context before the error\n")
            raise RuntimeError("boom")
    assert "context before the error" in capfd.readouterr().err


def test_load_takes_a_subset_of_real_data_and_names_phantom_only_options(tmp_path, tiny_phantom):
    from medkit import data

    npz = data.write_medmnist(tiny_phantom, tmp_path / "small.npz")
    small = data.load(str(npz), sizes=(10, 5, 50))
    assert (len(small.train), len(small.val), len(small.test)) == (10, 5, 20)
    assert small.image_size == 32 and small.info["subset"] == (10, 5, 20)
    rows = {tuple(r.ravel()) for r in tiny_phantom.train.images.reshape(60, -1)}
    assert all(tuple(r.ravel()) in rows for r in small.train.images.reshape(10, -1))
    assert np.array_equal(data.load(str(npz), sizes=(10, 5, 50)).train.images, small.train.images)
    with pytest.raises(ValueError, match=r"only the phantom draws.*data.load\('phantom'"):
        data.load(str(npz), masks=True)
    folder = data.write_kermany(tiny_phantom, tmp_path / "k")
    assert data.load(str(folder)).image_size == 64  # films on disk: the profile's size
