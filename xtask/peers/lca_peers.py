"""Fit a latent class model with the peers StepMix and poLCA (pypolca) and
print, as JSON, each tool's fit time and log-likelihood.

Usage: python lca_peers.py DATA.csv STARTS [--classes K] [--reps R]
                           [--tools stepmix,polca]

DATA.csv has a header row; every column whose name does not start with
"true" is a binary or categorical item coded 0, 1, ... (the synthetic files
in tests/data/). Only the fit call is timed (the median of R repetitions);
reading the data and importing the packages are not. Both tools stop when the
total log-likelihood changes by less than 1e-6 in one EM iteration (poLCA:
tol = 1e-6; StepMix's abs_tol is per row, so 1e-6 / n), start from STARTS
random starting points (poLCA: nrep; StepMix: n_init) and keep the best.

The log-likelihood printed is the total over rows, natural log: poLCA's
`loglik` is already that; StepMix's `score` is the mean per row, so it is
multiplied by n.

Output (one JSON object on standard output):
{"n": ..., "items": ..., "starts": ..., "python": "3.12.1",
 "tools": {"poLCA": {"version": ..., "seconds": [...], "median_s": ...,
 "loglik": ...}, "StepMix": {...}}}
A tool that cannot be imported or fails gets {"error": "..."} instead.
"""

import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np


def read_items(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    cols = [i for i, name in enumerate(header) if not name.lower().startswith("true")]
    y = np.loadtxt(path, delimiter=",", skiprows=1, usecols=cols, dtype=np.int64, ndmin=2)
    return [header[i] for i in cols], y


def time_it(fn, reps):
    secs = []
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        secs.append(time.perf_counter() - t0)
    return secs, result


def run_polca(names, y, starts, classes, reps):
    import polars as pl
    import pypolca

    # poLCA codes categories 1, 2, ... (0 is missing)
    df = pl.DataFrame({name: y[:, j] + 1 for j, name in enumerate(names)})
    formula = "cbind(" + ", ".join(names) + ") ~ 1"

    def fit():
        return pypolca.fit(formula, df, nclass=classes, nrep=starts, tol=1e-6, seed=1)

    secs, res = time_it(fit, reps)
    return {
        "version": getattr(pypolca, "__version__", "?"),
        "seconds": secs,
        "median_s": statistics.median(secs),
        "loglik": float(res.loglik),
    }


def run_stepmix(names, y, starts, classes, reps):
    import stepmix
    from stepmix.stepmix import StepMix

    n = y.shape[0]

    def fit():
        m = StepMix(
            n_components=classes,
            measurement="categorical" if y.max() > 1 else "binary",
            n_init=starts,
            abs_tol=1e-6 / n,
            max_iter=1000,
            random_state=1,
            verbose=0,
            progress_bar=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(y)
        return m

    secs, m = time_it(fit, reps)
    # score() is the mean log-likelihood per row: the total is n times it
    ll = float(m.score(y)) * n
    return {
        "version": getattr(stepmix, "__version__", "?"),
        "seconds": secs,
        "median_s": statistics.median(secs),
        "loglik": ll,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("starts", type=int)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tools", default="polca,stepmix")
    a = ap.parse_args()
    names, y = read_items(a.data)
    out = {
        "n": int(y.shape[0]),
        "items": len(names),
        "starts": a.starts,
        "classes": a.classes,
        "python": sys.version.split()[0],
        "tools": {},
    }
    runners = {"polca": ("poLCA", run_polca), "stepmix": ("StepMix", run_stepmix)}
    for key in a.tools.split(","):
        label, fn = runners[key.strip().lower()]
        try:
            out["tools"][label] = fn(names, y, a.starts, a.classes, a.reps)
        except Exception as e:  # report, do not crash: the other tool may work
            out["tools"][label] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
