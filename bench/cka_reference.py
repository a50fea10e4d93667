"""Independent numpy reference for src/measure/cka.ts (Kornblith et al. 2019 code, verbatim logic).

Reads JSON {"x": [[...]], "y": [[...]], "tau": float} on stdin and prints JSON with linear/RBF,
biased/debiased CKA. The debiased path uses Kornblith's "unbiased centring" of the Gram matrix,
a different formulation from the Song et al. formula implemented in TypeScript.
"""

import json
import sys

import numpy as np


def gram_linear(x):
    return x.dot(x.T)


def gram_rbf(x, threshold):
    dot_products = x.dot(x.T)
    sq_norms = np.diag(dot_products)
    sq_distances = -2 * dot_products + sq_norms[:, None] + sq_norms[None, :]
    sq_median_distance = np.median(sq_distances)  # includes the zero diagonal
    return np.exp(-sq_distances / (2 * threshold**2 * sq_median_distance))


def center_gram(gram, unbiased=False):
    gram = gram.copy()
    if unbiased:
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0, dtype=np.float64) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = np.mean(gram, 0, dtype=np.float64)
        means -= np.mean(means) / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def cka(gram_x, gram_y, debiased=False):
    gram_x = center_gram(gram_x, unbiased=debiased)
    gram_y = center_gram(gram_y, unbiased=debiased)
    scaled_hsic = gram_x.ravel().dot(gram_y.ravel())
    return scaled_hsic / (np.linalg.norm(gram_x) * np.linalg.norm(gram_y))


def main():
    req = json.load(sys.stdin)
    x = np.asarray(req["x"], dtype=np.float64)
    y = np.asarray(req["y"], dtype=np.float64)
    tau = float(req.get("tau", 0.5))
    out = {}
    for kernel, gram in (("linear", gram_linear), ("rbf", lambda m: gram_rbf(m, tau))):
        gx, gy = gram(x), gram(y)
        out[kernel] = {"biased": float(cka(gx, gy)), "debiased": float(cka(gx, gy, debiased=True))}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
