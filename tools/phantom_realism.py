"""How much does the phantom look like real chest films? Two measured answers.

1. Transfer: a small CNN trained on phantom films only (28 px, pneumonia vs not,
   early stopping on a phantom validation split) is scored on the real
   PneumoniaMNIST test split. A phantom whose pneumonia looks like real
   pneumonia gives a high AUC; one that teaches a phantom-only cue gives ~0.5.
2. Separability: a logistic regression on raw pixels tries to tell real training
   films from phantom films, scored on real test films against fresh phantom
   films. 1.0 means a linear model tells them apart perfectly; 0.5 means it
   cannot. For scale, the same model on the same pixels tells real pneumonia
   from real normal films (``reference_auc``): a phantom that a linear model
   separates from real films better than it separates the two real classes is
   further from real films than the finding the kit teaches to detect.

Run from the repository's root (results go to stdout as JSON):

    python tools/phantom_realism.py --seeds 0 1 2 --out docs/results/phantom_realism.json
    python tools/phantom_realism.py --npz ../shared/data/pneumoniamnist.npz --skip-transfer
    python tools/phantom_realism.py --skip-transfer --mean-film   # what the linear model reads: the mean films

The kit aims at a transfer AUC of at least 0.85 (mean over 3 seeds) and a separability of at most 0.90.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SIZE = 28
#: Pneumonia prevalence of PneumoniaMNIST's training split (3494 of 4708).
REAL_PREVALENCE = 0.74
DEFAULT_NPZ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pneumoniamnist.npz"


def load_real(npz):
    """PneumoniaMNIST's train and test films (uint8, n x 28 x 28) and test labels."""
    with np.load(npz) as z:
        return z["train_images"], z["test_images"], z["test_labels"].ravel()


def _linear_auc(x_fit, y_fit, x_test, y_test):
    """Test AUC of a logistic regression on raw pixels (0-1), the model both measurements of separability use."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    model = LogisticRegression(C=1.0, max_iter=2000).fit(x_fit.reshape(len(x_fit), -1) / 255.0, y_fit)
    return float(roc_auc_score(y_test, model.predict_proba(x_test.reshape(len(x_test), -1) / 255.0)[:, 1]))


def reference_auc(npz):
    """The yardstick: the same linear model telling real pneumonia from real normal films (train -> test)."""
    with np.load(npz) as z:
        return _linear_auc(z["train_images"], z["train_labels"].ravel(), z["test_images"], z["test_labels"].ravel())


def phantom_films(n, seed):
    """``n`` phantom films at 28 px, pneumonia at PneumoniaMNIST's prevalence, and their pneumonia labels."""
    from medkit.data import phantom

    films = phantom.generate(n, size=SIZE, seed=seed, prevalence={"pneumonia": REAL_PREVALENCE})
    return films.images, films.labels[:, phantom.FINDINGS.index("pneumonia")]


def transfer_auc(real_test, real_labels, seed, n_train=4000, n_val=1000, max_epochs=40, verbose=0):
    """Test AUC on real films of a small CNN trained on the phantom alone (validation stopping on the phantom)."""
    import keras
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from medkit.models import small_cnn

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()  # a re-run on the same machine gives the same figures
    x, y = phantom_films(n_train + n_val, seed=1000 + seed)
    x = x[..., None].astype(np.float32) / 255.0
    model = small_cnn(SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=5, restore_best_weights=True)
    history = model.fit(x[:n_train], y[:n_train], validation_data=(x[n_train:], y[n_train:]), epochs=max_epochs,
                        batch_size=64, callbacks=[stop], verbose=verbose)
    score = model.predict(real_test[..., None].astype(np.float32) / 255.0, verbose=0).ravel()
    return {"seed": seed, "epochs": len(history.history["loss"]),
            "phantom_val_auc": float(max(history.history["val_auc"])),
            "real_test_auc": float(roc_auc_score(real_labels, score))}


def separability_auc(real_train, real_test, seed=0, *, toward_real=0.0):
    """AUC of a pixel-wise logistic regression telling real films from phantom films (held-out films of both).

    ``toward_real`` moves every phantom film by that fraction of the difference between the real training films'
    mean film and the phantom training films' (a diagnosis, not a phantom: 1 gives both sets the same mean film).
    """
    fit_phantom, _ = phantom_films(len(real_train), seed=2000 + seed)
    test_phantom, _ = phantom_films(len(real_test), seed=3000 + seed)
    if toward_real:
        shift = toward_real * (real_train.mean(axis=0) - fit_phantom.mean(axis=0))
        fit_phantom, test_phantom = (np.clip(films + shift, 0, 255) for films in (fit_phantom, test_phantom))
    return _linear_auc(np.concatenate([real_train, fit_phantom]), np.r_[np.ones(len(real_train)), np.zeros(len(fit_phantom))],
                       np.concatenate([real_test, test_phantom]), np.r_[np.ones(len(real_test)), np.zeros(len(test_phantom))])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help="PneumoniaMNIST .npz (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-transfer", action="store_true", help="only the linear separability")
    parser.add_argument("--mean-film", action="store_true", help="also the separability with the phantom's mean "
                        "film moved part of the way to the real one, and the mean-film gap in grey levels")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file (e.g. "
                        "docs/results/phantom_realism.json, which notebook 01 reads)")
    args = parser.parse_args(argv)
    if not args.npz.is_file():
        parser.error(f"no PneumoniaMNIST file at {args.npz}; pass --npz /path/to/pneumoniamnist.npz")
    real_train, real_test, real_labels = load_real(args.npz)
    out = {"separability_auc": separability_auc(real_train, real_test),
           "reference_auc": reference_auc(args.npz),
           "mean_grey": {"real_test": float(real_test.mean()),
                         "phantom": float(phantom_films(len(real_test), seed=3000)[0].mean())}}
    print(f"linear real-vs-phantom AUC: {out['separability_auc']:.3f} (real pneumonia vs real normal, the same "
          f"model: {out['reference_auc']:.3f})", file=sys.stderr)
    if args.mean_film:
        gap = np.abs(real_train.mean(axis=0) - phantom_films(len(real_train), seed=2000)[0].mean(axis=0)).mean()
        out["mean_film_gap_grey_levels"] = float(gap)
        out["separability_toward_real_mean_film"] = {
            str(f): separability_auc(real_train, real_test, toward_real=f) for f in (0.5, 0.8, 0.9, 1.0)}
        print(f"mean film gap {gap:.1f} grey levels; separability with the phantom's mean film moved toward the "
              f"real one: {out['separability_toward_real_mean_film']}", file=sys.stderr)
    if not args.skip_transfer:
        out["transfer"] = []
        for seed in args.seeds:
            out["transfer"].append(transfer_auc(real_test, real_labels, seed))
            print(f"seed {seed}: {out['transfer'][-1]}", file=sys.stderr, flush=True)
        aucs = [r["real_test_auc"] for r in out["transfer"]]
        out["transfer_auc_mean"] = float(np.mean(aucs))
        out["transfer_auc_sd"] = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0
    text = json.dumps(out, indent=1) + "\n"
    print(text, end="")
    if args.out:  # written whole or not at all: a failed run leaves the previous file as it was
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(args.out)


if __name__ == "__main__":
    main()
