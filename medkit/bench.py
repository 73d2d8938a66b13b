"""Benchmark every method the kit teaches on one dataset.

Usage::

    python -m medkit.bench --dataset pneumoniamnist --data-path ../shared/data/pneumoniamnist.npz
    python -m medkit.bench --dataset phantom --methods logreg,small_cnn --seeds 5 --json bench.json

Each method trains on the training split, picks its settings on the
validation split only, and is scored once on the test split. Every method
runs for several seeds (``--seeds``, default 3; :func:`medkit.evaluate.over_seeds`),
since one training run says little about a recipe, and the table gives the
mean ± standard deviation over seeds of the test AUC and ACC (as MedMNIST v2
reports them), the mean training time in seconds and the number of
parameters; for PneumoniaMNIST the published results follow as reference
rows (MedMNIST v2 and MedMNIST+). ``--json`` writes every seed's row and the
summary to a file.

On the phantom the bench also times the generator (5,000 images of 64x64)
and reports the two figures that define its difficulty: logistic regression
on raw pixels (meant to stay at or below 0.80 AUC) and the small CNN (meant
to exceed 0.90).

Introduced in ``01_chest_xray_data.ipynb``; each notebook adds its method.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medkit import evaluate
from medkit.results import write_json

__all__ = ["Row", "Summary", "METHODS", "REFERENCE", "run", "summarise", "table", "time_phantom", "main"]

#: Published results on the PneumoniaMNIST test split: (source, model, AUC, ACC). MedMNIST v2 (Yang et al.
#: 2023, Table 3) trained each model once; MedMNIST+ (Doerrich et al. 2025) reports means over three seeds, and
#: the row given is its best at 28 px.
REFERENCE = {
    "pneumoniamnist": [
        ("MedMNIST v2", "ResNet-18 (28)", 0.944, 0.854),
        ("MedMNIST v2", "ResNet-18 (224)", 0.956, 0.864),
        ("MedMNIST v2", "ResNet-50 (28)", 0.948, 0.854),
        ("MedMNIST v2", "ResNet-50 (224)", 0.962, 0.884),
        ("MedMNIST v2", "auto-sklearn (28)", 0.942, 0.855),
        ("MedMNIST v2", "AutoKeras (28)", 0.947, 0.878),
        ("MedMNIST v2", "Google AutoML Vision (28)", 0.991, 0.946),
        ("MedMNIST+", "best at 28 px, mean of 3 seeds", 0.973, 0.866),
    ]
}


@dataclass(frozen=True)
class Row:
    """One method's result on the test split, for one seed."""

    method: str
    auc: float
    acc: float
    train_seconds: float
    parameters: int
    note: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Summary:
    """One method over all its seeds: mean and standard deviation (``ddof=1``)."""

    method: str
    seeds: int
    auc_mean: float
    auc_sd: float
    acc_mean: float
    acc_sd: float
    train_seconds: float
    parameters: int
    note: str = ""


def as_arrays(split, image_size: int) -> np.ndarray:
    """A split's images as float32 (N, image_size, image_size) in [0, 1]."""
    if split.in_memory and split.images.shape[1] == image_size:
        return split.images.astype(np.float32) / 255.0
    from medkit.data import pipeline

    batches = [x.numpy()[..., 0] for x, _ in pipeline(split, image_size=image_size, batch_size=256, cache=False)]
    return np.concatenate(batches)


def _logreg(ds, image_size, profile, seed):
    """Logistic regression on raw pixels, C chosen on validation AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {name: as_arrays(s, image_size).reshape(len(s), -1) for name, s in ds.splits.items()}
    binary = ds.task == "binary"
    y_train = ds.train.labels[:, 0] if binary else ds.train.labels
    start = time.perf_counter()
    best = None
    for c in (1e-3, 1e-2, 1e-1):
        clf = LogisticRegression(C=c, max_iter=1000)
        model = make_pipeline(StandardScaler(), clf if binary else OneVsRestClassifier(clf)).fit(x["train"], y_train)
        score = evaluate.auc(ds.val.labels, _proba(model, x["val"], binary))
        if best is None or score > best[0]:
            best = (score, c, model)
    seconds = time.perf_counter() - start
    _, c, model = best
    params = (x["train"].shape[1] + 1) * ds.train.labels.shape[1]
    return _proba(model, x["test"], binary), seconds, params, f"C={c:g} (chosen on val)"


def _proba(model, x, binary):
    p = model.predict_proba(x)
    return p[:, 1:] if binary else p


def _hog_lbp_rf(ds, image_size, profile, seed):
    """HOG + LBP + tile statistics into a random forest, settings chosen on validation AUC."""
    from sklearn.ensemble import RandomForestClassifier

    from medkit import features

    extractor = features.hog_lbp_features(image_size)
    start = time.perf_counter()
    x = {name: extractor.fit_transform(np.round(as_arrays(s, image_size) * 255).astype(np.uint8))
         for name, s in ds.splits.items()}
    binary = ds.task == "binary"
    y_train = ds.train.labels[:, 0] if binary else ds.train.labels
    best = None
    for max_features in ("sqrt", "log2"):
        for leaf in (1, 3):
            forest = RandomForestClassifier(n_estimators=300, max_features=max_features, min_samples_leaf=leaf,
                                            class_weight="balanced" if binary else None, n_jobs=-1, random_state=seed)
            forest.fit(x["train"], y_train)
            score = evaluate.auc(ds.val.labels, _forest_proba(forest, x["val"]))
            if best is None or score > best[0]:
                best = (score, f"max_features={max_features}, min_samples_leaf={leaf}", forest)
    seconds = time.perf_counter() - start
    _, note, forest = best
    nodes = sum(tree.tree_.node_count for tree in forest.estimators_)
    note = f"{x['train'].shape[1]} features; {note} (chosen on val); params = tree nodes"
    return _forest_proba(forest, x["test"]), seconds, nodes, note


def _forest_proba(forest, x):
    p = forest.predict_proba(x)
    return np.stack([q[:, 1] for q in p], axis=1) if isinstance(p, list) else p[:, 1:]


#: The networks trained in the current :func:`run`, by (method, seed), so the ensemble reuses them.
_FITTED = {}


def _keras_method(build, ds, image_size, profile, seed, *, name=None, **fit_options):
    """Train ``build(n_outputs)`` with medkit.train.fit, selecting on val; score the test split once."""
    from medkit import train

    n_outputs = ds.train.labels.shape[1]
    result = train.fit(lambda: build(n_outputs), ds, profile=profile, image_size=image_size, seed=seed, verbose=False,
                       **fit_options)
    if name is not None:
        _FITTED[name, seed] = result
    scores = train.predict(result.model, ds.test, image_size=image_size)
    note = f"best of {len(result.history['loss'])} epochs: {result.best_epoch} (on val)"
    return scores, result.seconds, result.model.count_params(), note


def _small_cnn(ds, image_size, profile, seed):
    """The CNN of notebook 04: medkit.models.small_cnn with dropout 0.2, augmented."""
    from medkit import models

    return _keras_method(lambda k: models.small_cnn(image_size, k, dropout=0.2), ds, image_size, profile, seed,
                         name="small_cnn", patience=5)


def _lstm_rows(ds, image_size, profile, seed):
    """The row-reading LSTM of notebook 05 (pixels standardised on the training split), not augmented."""
    from medkit import models

    images = np.round(as_arrays(ds.train, image_size) * 255).astype(np.uint8)
    return _keras_method(lambda k: models.row_lstm(image_size, k, train_images=images), ds, image_size, profile, seed,
                         epochs=max(profile.epochs, 20), patience=5, augment=False)


def _resnet(ds, image_size, profile, seed):
    """The ResNet of medkit.models (6 residual blocks), augmented."""
    from medkit import models

    return _keras_method(lambda k: models.resnet(image_size, k), ds, image_size, profile, seed,
                         name="resnet", epochs=max(profile.epochs, 20), patience=6)


def _patch(image_size, tokens_per_side=8, smallest=4):
    """Patch size giving about ``tokens_per_side`` x ``tokens_per_side`` tokens (4 px at 28 px, 8 at 64, 28 at 224)."""
    return max(smallest, image_size // tokens_per_side)


def _vit(ds, image_size, profile, seed):
    """The Vision Transformer of notebook 07 (about 8 x 8 patches, 4 blocks), each film standardised, augmented,
    weight decay 0.05."""
    from medkit import models

    def build(n_outputs):
        return models.vit(image_size, n_outputs, patch=_patch(image_size), standardize=True)

    return _keras_method(build, ds, image_size, profile, seed,
                         epochs=max(profile.epochs, 30), patience=8, weight_decay=0.05)


def _hybrid_vit(ds, image_size, profile, seed):
    """The hybrid of notebook 07: a convolutional stem, then the ViT on about 8 x 8 patches of the half-size map."""
    from medkit import models

    patch = _patch(image_size // 2, smallest=2)
    return _keras_method(lambda k: models.vit(image_size, k, stem=True, patch=patch), ds, image_size, profile, seed,
                         name="hybrid_vit", epochs=max(profile.epochs, 30), patience=8, weight_decay=0.05)


#: The ensemble's members: one network of each family the notebooks teach (04, 06, 07).
ENSEMBLE = ("small_cnn", "resnet", "hybrid_vit")


def _ensemble_tta(ds, image_size, profile, seed):
    """The mean probability of the small CNN, the ResNet and the hybrid ViT, each with test-time augmentation.

    Members trained earlier in the same run (same seed) are reused; their training time is counted.
    """
    from medkit import train

    scores, seconds, params = [], 0.0, 0
    for member in ENSEMBLE:
        if (member, seed) not in _FITTED:
            METHODS[member][1](ds, image_size, profile, seed)
        fitted = _FITTED[member, seed]
        scores.append(train.predict_tta(fitted.model, ds.test, image_size=image_size))
        seconds += fitted.seconds
        params += fitted.model.count_params()
    return np.mean(scores, axis=0), seconds, params, f"mean of {', '.join(ENSEMBLE)}, each over 5 shifted copies"


#: Method name -> (description, trainer). Later notebooks add theirs.
METHODS = {
    "logreg": ("logistic regression on pixels", _logreg),
    "hog_lbp_rf": ("HOG + LBP features, random forest", _hog_lbp_rf),
    "small_cnn": ("small CNN (4 conv blocks, notebook 04)", _small_cnn),
    "lstm_rows": ("LSTM reading rows (notebook 05)", _lstm_rows),
    "resnet": ("ResNet, 6 residual blocks", _resnet),
    "vit": ("Vision Transformer, about 8 x 8 patches, films standardised", _vit),
    "hybrid_vit": ("ViT with a convolutional stem", _hybrid_vit),
    "ensemble_tta": ("ensemble of the CNN, ResNet and hybrid ViT, test-time augmented", _ensemble_tta),
}


def run(ds, methods=("logreg",), *, profile=None, seeds=(0,), image_size: int | None = None,
        scores: dict | None = None, verbose: bool = True) -> list[Row]:
    """Train and test each of ``methods`` on dataset ``ds``, once per seed.

    Parameters
    ----------
    ds : medkit.data.Dataset
    methods : sequence of str
        Keys of :data:`METHODS`.
    profile : medkit.config.Profile, optional
        Default: the active profile.
    seeds : int or sequence of int, default (0,)
        As in :func:`medkit.evaluate.over_seeds`; the command line runs three.
    image_size : int, optional
        Default: the training images' own size (in memory) or the profile's.
    scores : dict, optional
        If given, filled with each method's test scores, ``scores[method, seed]``
        (N, K), for paired comparisons (:func:`medkit.evaluate.delong_test`).
    verbose : bool, default True
        Print progress, one line per method and seed.

    Returns
    -------
    list of Row
        One per method and seed, method by method.
    """
    from medkit import config

    profile = profile or config.profile()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; available: {', '.join(METHODS)} (or 'all').")
    if image_size is None:
        image_size = ds.train.images.shape[1] if ds.train.in_memory else profile.image_size
    rows = []
    _FITTED.clear()
    for name in methods:
        description, trainer = METHODS[name]
        if verbose:
            print(f"[bench] {name}: {description} on {ds.name} ({len(ds.train)} training images) ...", flush=True)

        def recipe(seed, trainer=trainer):
            test_scores, seconds, params, note = trainer(ds, image_size, profile, seed)
            return {"auc": evaluate.auc(ds.test.labels, test_scores),
                    "acc": evaluate.accuracy(ds.test.labels, test_scores),
                    "train_seconds": round(seconds, 1), "parameters": int(params), "note": note,
                    "scores": test_scores}

        runs = evaluate.over_seeds(recipe, seeds, keep=("note", "scores"), name=f"bench {name}", verbose=verbose)
        if scores is not None:
            scores.update({(name, seed): s for seed, s in zip(runs.seeds, runs.kept["scores"])})
        for i, seed in enumerate(runs.seeds):
            rows.append(Row(method=name, auc=float(runs.metrics["auc"][i]), acc=float(runs.metrics["acc"][i]),
                            train_seconds=float(runs.metrics["train_seconds"][i]),
                            parameters=int(runs.metrics["parameters"][i]), note=runs.kept["note"][i], seed=seed))
        if verbose and len(runs.seeds) > 1:
            print(f"[bench] {name}: test AUC {runs.summary('auc')}, ACC {runs.summary('acc')} over "
                  f"{len(runs.seeds)} seeds", flush=True)
    _FITTED.clear()
    return rows


def summarise(rows: list[Row]) -> list[Summary]:
    """Mean and standard deviation over seeds, one :class:`Summary` per method, in the rows' order.

    Examples
    --------
    >>> (s,) = summarise([Row("cnn", 0.96, 0.90, 20.0, 100, seed=0), Row("cnn", 0.98, 0.92, 22.0, 100, seed=1)])
    >>> s.seeds, round(s.auc_mean, 3), round(s.auc_sd, 4), s.train_seconds
    (2, 0.97, 0.0141, 21.0)
    """
    def sd(values):
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    out = []
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        auc, acc = np.array([r.auc for r in mine]), np.array([r.acc for r in mine])
        out.append(Summary(method, len(mine), float(auc.mean()), sd(auc), float(acc.mean()), sd(acc),
                           round(float(np.mean([r.train_seconds for r in mine])), 1), mine[0].parameters,
                           mine[0].note))
    return out


def table(rows: list[Row], dataset: str | None = None) -> str:
    """The rows as a fixed-width table (mean ± sd over seeds), with reference rows for ``dataset``.

    Examples
    --------
    >>> print(table([Row("logreg", 0.8, 0.75, 2.0, 4097, "C=0.01")]))
    method                     seeds      test AUC      test ACC  train s      params  note
    logreg                         1 0.800 ± 0.000 0.750 ± 0.000      2.0       4,097  C=0.01
    """
    references = [(f"{source}: {name}", a, c) for source, name, a, c in REFERENCE.get(dataset or "", [])]
    width = max([26] + [len(r.method) + 2 for r in rows] + [len(label) - 4 for label, _, _ in references])
    lines = [f"{'method':<{width}}{'seeds':>6}{'test AUC':>14}{'test ACC':>14}{'train s':>9}{'params':>12}  note"]
    for r in summarise(rows):
        lines.append(f"{r.method:<{width}}{r.seeds:>6} {r.auc_mean:.3f} ± {r.auc_sd:.3f} {r.acc_mean:.3f} ± {r.acc_sd:.3f}"
                     f"{r.train_seconds:>9.1f}{r.parameters:>12,}  {r.note}")
    for label, a, c in references:
        lines.append(f"{label:<{width + 6}}{a:>14.3f}{c:>14.3f}{'':>9}{'':>12}  published")
    return "\n".join(lines)


def time_phantom(n: int = 5000, size: int = 64, seed: int = 0) -> float:
    """Seconds to generate ``n`` phantom images of ``size`` pixels."""
    from medkit.data import phantom

    start = time.perf_counter()
    phantom.generate(n, size=size, seed=seed)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m medkit.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default=None, help="phantom, pneumoniamnist, chestmnist or a path (default: MEDKIT_DATASET or phantom)"
    )
    parser.add_argument("--data-path", default=None, help="local copy of a MedMNIST file to use instead of downloading")
    parser.add_argument("--methods", default="all", help=f"'all' or a comma-separated list of: {', '.join(METHODS)}")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--profile", default=None, help="cpu or gpu (default: MEDKIT_PROFILE or cpu)")
    parser.add_argument("--seeds", type=int, default=3, help="train every method with seeds 0 .. N-1 (default 3)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1; got {args.seeds}.")

    import medkit
    from medkit import data

    methods = list(METHODS) if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)} or 'all'.")
    try:
        cfg = medkit.setup(0, profile=args.profile, dataset=args.dataset)
        ds = data.load(cfg.dataset, profile=args.profile, path=args.data_path)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    payload = {"dataset": ds.name, "profile": cfg.profile.name, "seeds": list(range(args.seeds)), "source": ds.source}
    if ds.name == "phantom":
        seconds = time_phantom()
        payload["phantom_5000x64_seconds"] = round(seconds, 2)
        print(f"[bench] phantom generator: 5,000 images of 64x64 in {seconds:.1f} s")
    rows = run(ds, methods, profile=cfg.profile, seeds=args.seeds)
    print()
    print(table(rows, ds.name))
    payload["rows"] = [asdict(r) for r in rows]
    payload["summary"] = [asdict(s) for s in summarise(rows)]
    payload["reference"] = [{"source": src, "method": n, "auc": a, "acc": c} for src, n, a, c in REFERENCE.get(ds.name, [])]
    if args.json:
        write_json(Path(args.json), payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
