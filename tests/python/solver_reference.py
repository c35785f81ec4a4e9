"""The closed forms of the repair crate's solvers computed independently with numpy.

usage: solver_reference.py INPUT.json OUT.json
INPUT.json holds random matrices (nested lists) and scalars:
  joint: directions [T, d], keys [T, S], metric [S, S] (symmetric positive definite), targets [T],
         output [d, d] (symmetric positive definite: the output metric of joint_output)
  memit: residuals [d, n], keys [f, n], covariance [f, f], lambda
  alphaedit: previous [f, f], alpha, threshold (with the memit residuals, keys and covariance)
OUT.json: {"joint": [S, d], "joint_output": [S, d], "memit": [d, f], "projector": [f, f], "alphaedit": [d, f]}.

joint is solved as a plain minimum-norm least-squares problem: with M = L L^T (Cholesky) and the unknowns
Z = L^T D (so that tr(D^T M D) = |Z|^2), row t of the system is kron(L^-1 k_t, c_t) and numpy's lstsq returns the
minimum-norm Z (no ridge); D = L^-T Z. joint_output minimises tr(D^T M D N) instead: with N = H H^T, Z = L^T D H,
row t is kron(L^-1 k_t, H^-1 c_t) and D = L^-T Z H^-1. The projector comes from numpy's SVD of the covariance (singular values below the
threshold), AlphaEdit's update from the paper's formula with explicit inverses.
"""
import json
import sys

import numpy as np

with open(sys.argv[1]) as f:
    data = {k: np.array(v, dtype=np.float64) for k, v in json.load(f).items()}

c, k, M, g = data["directions"], data["keys"], data["metric"], data["targets"]
T, d = c.shape
S = M.shape[0]
L = np.linalg.cholesky(M)
scaled = np.linalg.solve(L, k.T).T
system = np.stack([np.kron(scaled[t], c[t]) for t in range(T)])
z, *_ = np.linalg.lstsq(system, g, rcond=None)
joint = np.linalg.solve(L.T, z.reshape(S, d))

H = np.linalg.cholesky(data["output"])
whitened = np.linalg.solve(H, c.T).T
system = np.stack([np.kron(scaled[t], whitened[t]) for t in range(T)])
z, *_ = np.linalg.lstsq(system, g, rcond=None)
joint_output = np.linalg.solve(L.T, z.reshape(S, d)) @ np.linalg.inv(H)

R, K, C = data["residuals"], data["keys_layer"], data["covariance"]
lam = float(data["lambda"])
memit = R @ K.T @ np.linalg.inv(lam * C + K @ K.T)

U, s, _ = np.linalg.svd(C)
null = U[:, s < float(data["threshold"])]
P = null @ null.T
f = C.shape[0]
alphaedit = R @ K.T @ P @ np.linalg.inv(data["previous"] @ P + K @ K.T @ P + float(data["alpha"]) * np.eye(f))

with open(sys.argv[2], "w") as out:
    json.dump({"joint": joint.tolist(), "joint_output": joint_output.tolist(), "memit": memit.tolist(), "projector": P.tolist(), "alphaedit": alphaedit.tolist()}, out)
