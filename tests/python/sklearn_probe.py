"""scikit-learn on the same activation matrix, as the reference for the Rust probes.

usage: sklearn_probe.py DIR C ALPHA
DIR holds x_train.f32, x_test.f32 (raw float32, row-major), and meta.json {"width", "y_train", "y_test"}.
Prints JSON {"test_accuracy": ..., "ridge_r2": ...}: StandardScaler fitted on the training rows, then
multinomial LogisticRegression(C=C, L2, lbfgs), and Ridge(alpha=ALPHA) on the labels as numbers (test R^2).
"""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

folder, c, alpha = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(os.path.join(folder, "meta.json")) as f:
    meta = json.load(f)
load = lambda name: np.fromfile(os.path.join(folder, name), dtype=np.float32).reshape(-1, meta["width"]).astype(np.float64)
scaler = StandardScaler().fit(load("x_train.f32"))
x_train, x_test = scaler.transform(load("x_train.f32")), scaler.transform(load("x_test.f32"))
model = LogisticRegression(C=c, max_iter=5000).fit(x_train, meta["y_train"])
ridge = Ridge(alpha=alpha).fit(x_train, np.array(meta["y_train"], dtype=np.float64))
print(json.dumps({
    "test_accuracy": float(model.score(x_test, meta["y_test"])),
    "ridge_r2": float(ridge.score(x_test, np.array(meta["y_test"], dtype=np.float64))),
}))
