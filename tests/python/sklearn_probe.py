"""scikit-learn's LogisticRegression on the same activation matrix, as the reference for the Rust probe.

usage: sklearn_probe.py DIR C
DIR holds x_train.f32, x_test.f32 (raw float32, row-major), and meta.json {"width", "y_train", "y_test"}.
Prints JSON {"test_accuracy": ...}: StandardScaler fitted on the training rows, then multinomial
LogisticRegression(C=C, L2, lbfgs).
"""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

folder, c = sys.argv[1], float(sys.argv[2])
with open(os.path.join(folder, "meta.json")) as f:
    meta = json.load(f)
load = lambda name: np.fromfile(os.path.join(folder, name), dtype=np.float32).reshape(-1, meta["width"]).astype(np.float64)
x_train, x_test = load("x_train.f32"), load("x_test.f32")
scaler = StandardScaler().fit(x_train)
model = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x_train), meta["y_train"])
print(json.dumps({"test_accuracy": float(model.score(scaler.transform(x_test), meta["y_test"]))}))
