"""The closed forms of the repair crate's solvers computed independently with numpy.

usage: solver_reference.py INPUT.json OUT.json
INPUT.json holds random matrices (nested lists) and scalars:
  joint: directions [T, d], keys [T, S], weights [S], targets [T]
  memit: residuals [d, n], keys [f, n], covariance [f, f], lambda
  alphaedit: previous [f, f], alpha, threshold (with the memit residuals, keys and covariance)
OUT.json: {"joint": [S, d], "memit": [d, f], "projector": [f, f], "alphaedit": [d, f]}.

joint is solved as a plain minimum-norm least-squares problem over the flattened, rescaled unknowns
x_j = dv_j / sqrt(w_j): row t of the system is k_t[j] sqrt(w_j) c_t for every neuron j, and numpy's lstsq returns
the minimum-norm x (no ridge). The projector comes from numpy's SVD of the covariance (singular values below the
threshold), AlphaEdit's update from the paper's formula with explicit inverses.
"""
import json
import sys

import numpy as np

with open(sys.argv[1]) as f:
    data = {k: np.array(v, dtype=np.float64) for k, v in json.load(f).items()}

c, k, w, g = data["directions"], data["keys"], data["weights"], data["targets"]
T, d = c.shape
S = w.shape[0]
system = np.zeros((T, S * d))
for t in range(T):
    for j in range(S):
        system[t, j * d:(j + 1) * d] = k[t, j] * np.sqrt(w[j]) * c[t]
x, *_ = np.linalg.lstsq(system, g, rcond=None)
joint = x.reshape(S, d) * np.sqrt(w)[:, None]

R, K, C = data["residuals"], data["keys_layer"], data["covariance"]
lam = float(data["lambda"])
memit = R @ K.T @ np.linalg.inv(lam * C + K @ K.T)

U, s, _ = np.linalg.svd(C)
null = U[:, s < float(data["threshold"])]
P = null @ null.T
f = C.shape[0]
alphaedit = R @ K.T @ P @ np.linalg.inv(data["previous"] @ P + K @ K.T @ P + float(data["alpha"]) * np.eye(f))

with open(sys.argv[2], "w") as out:
    json.dump({"joint": joint.tolist(), "memit": memit.tolist(), "projector": P.tolist(), "alphaedit": alphaedit.tolist()}, out)
