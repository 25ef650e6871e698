"""Simulates tests/data/nominal_reg.dat and fits the peer values of
tests/tests/nominal.rs (`one_class_nominal_regression_matches_scikit_learn`).

Data: n = 2000 rows `u x1 x2`, u in {1, 2, 3, 4} (category 4 the
reference), x1 ~ N(0, 1), x2 ~ Bernoulli(0.4); log-odds of u = k against
u = 4: a_k + b_k1 x1 + b_k2 x2 with a = (0.5, -0.3, 0.2),
b1 = (1.0, -0.5, 0.3), b2 = (-0.8, 0.6, 0.0).

Peer: scikit-learn's multinomial LogisticRegression, unpenalised
(penalty=None), lbfgs with tol 1e-12; its coefficients are made
reference-coded (each category's minus category 4's) and its logL is the
sum of log predicted probabilities of the observed categories.

Run: target/peers-venv/bin/python tests/data/nominal_peer.py
"""
import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(20240611)
n = 2000
a = np.array([0.5, -0.3, 0.2, 0.0])
b1 = np.array([1.0, -0.5, 0.3, 0.0])
b2 = np.array([-0.8, 0.6, 0.0, 0.0])
x1 = rng.normal(size=n)
x2 = (rng.uniform(size=n) < 0.4).astype(float)
eta = a + np.outer(x1, b1) + np.outer(x2, b2)
p = np.exp(eta - eta.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
u = np.array([rng.choice(4, p=row) for row in p]) + 1
with open("tests/data/nominal_reg.dat", "w") as f:
    for i in range(n):
        f.write(f"{u[i]} {x1[i]:.6f} {x2[i]:.0f}\n")

data = np.loadtxt("tests/data/nominal_reg.dat")
y, X = data[:, 0].astype(int), data[:, 1:]
m = LogisticRegression(penalty=None, tol=1e-12, max_iter=100000)
m.fit(X, y)
coef = m.coef_ - m.coef_[-1]
icpt = m.intercept_ - m.intercept_[-1]
lp = m.predict_log_proba(X)
ll = lp[np.arange(len(y)), np.searchsorted(m.classes_, y)].sum()
print(f"logL {ll:.10f}")
for k in range(3):
    print(f"u#{k+1}: intercept {icpt[k]:.8f} x1 {coef[k,0]:.8f} x2 {coef[k,1]:.8f}")
