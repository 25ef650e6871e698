"""Fit a 2PL or a 2-class mixture 2PL (logit, theta ~ N(0, 1)) with python
mirt and print, as JSON, the fit times and the log-likelihood.

Usage: python irt_mirt.py DATA MODEL QPOINTS REPS [--max-iter N] [--tol T]

DATA is either a CSV file with a header row (a column named "id" is dropped,
every other column is an item) or a whitespace-separated file without a
header, one person per row, every column an item; items are coded 0/1.
MODEL is
  2pl      mirt.fit_mirt(data, model="2PL", n_quadpts=QPOINTS): EM over
           QPOINTS fixed Gauss-Hermite points, mirt's default convergence
           (tol = 1e-4 on the parameter change, at most 500 cycles), its
           standard errors included (mirt's default);
  mixture  mirt.fit_mixture_irt(data, n_classes=2, base_model="2PL",
           n_quadpts=QPOINTS): class-specific discriminations and intercepts,
           theta ~ N(0, 1) in each class, one deterministic start; it stops
           when the log-likelihood changes by less than tol * (1 + |logL|)
           (mirt's defaults: tol = 1e-4, max_iter = 100; --tol and
           --max-iter change them). No standard errors.
Only the fit call is timed (time.perf_counter, median of REPS runs), after
one untimed warm-up fit (the whole model for 2pl, a tiny one for mixture) so
that lazy imports are not timed; starting Python, importing mirt and reading
the data are not timed either (warmup_s says how long the warm-up took).

Output (one JSON object on standard output):
{"tool": "mirt", "version": "1.2.0", "model": "2pl", "qpoints": 61,
 "n": 316, "items": 24, "seconds": [...], "median_s": ..., "warmup_s": ...,
 "loglik": ..., "npar": 48, "converged": true, "iterations": 21}
"""

import argparse
import json
import sys
import time

import numpy as np


def read_items(path):
    """The 0/1 item matrix of DATA (see the module's docstring)."""
    with open(path) as f:
        first = f.readline()
    if any(c.isalpha() for c in first):
        names = [n.strip().strip('"').lower() for n in first.split(",")]
        cols = [i for i, n in enumerate(names) if n != "id"]
        x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=cols)
    else:
        x = np.loadtxt(path)
    return np.atleast_2d(x).astype(np.int64)


def fit_2pl(mirt, data, qpoints, args):
    r = mirt.fit_mirt(data, model="2PL", n_quadpts=qpoints)
    return r.log_likelihood, r.n_parameters, r.converged, r.n_iterations


def fit_mixture(mirt, data, qpoints, args):
    model, _ = mirt.fit_mixture_irt(
        data,
        n_classes=2,
        base_model="2PL",
        n_quadpts=qpoints,
        max_iter=args.max_iter,
        tol=args.tol,
    )
    info = model.convergence_info
    return (
        info["log_likelihood"],
        info["n_parameters"],
        info["converged"],
        info["n_iterations"],
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("model", choices=["2pl", "mixture"])
    p.add_argument("qpoints", type=int)
    p.add_argument("reps", type=int)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args()
    if args.reps < 1:
        sys.exit("REPS must be a positive integer")

    import mirt

    data = read_items(args.data)
    fit = fit_2pl if args.model == "2pl" else fit_mixture
    t = time.perf_counter()
    if args.model == "2pl":
        fit(mirt, data, args.qpoints, args)
    else:
        mirt.fit_mixture_irt(data[:50], n_classes=2, n_quadpts=5, max_iter=2)
    warmup = time.perf_counter() - t

    seconds = []
    result = None
    for _ in range(args.reps):
        t = time.perf_counter()
        result = fit(mirt, data, args.qpoints, args)
        seconds.append(time.perf_counter() - t)
    loglik, npar, converged, iterations = result
    out = {
        "tool": "mirt",
        "version": mirt.__version__,
        "model": args.model,
        "qpoints": args.qpoints,
        "n": int(data.shape[0]),
        "items": int(data.shape[1]),
        "seconds": seconds,
        "median_s": float(np.median(seconds)),
        "warmup_s": warmup,
        "loglik": float(loglik),
        "npar": int(npar),
        "converged": bool(converged),
        "iterations": int(iterations),
    }
    if args.model == "mixture":
        out["tol"] = args.tol
        out["max_iter"] = args.max_iter
    print(json.dumps(out))


if __name__ == "__main__":
    main()
