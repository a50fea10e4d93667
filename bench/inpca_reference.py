"""Reference for twinscope's trajectory embeddings (test/measure/eigen.test.ts, inpca.test.ts).

Reads JSON {"a": [[...]], "d": [[...]] (optional), "k": int} on stdin and writes JSON with
- "eigh": all eigenvalues of the symmetric matrix a (numpy.linalg.eigh, ascending);
- "inpca": for the distance matrix d, the eigenvalues of W = -1/2 J D J sorted by |lambda|
  descending and the explained stress of the first k axes.
"""
import json
import sys

import numpy as np


def main():
    req = json.load(sys.stdin)
    out = {}
    if "a" in req:
        a = np.asarray(req["a"], dtype=np.float64)
        out["eigh"] = np.linalg.eigh(a)[0].tolist()
    if "d" in req:
        d = np.asarray(req["d"], dtype=np.float64)
        m = d.shape[0]
        j = np.eye(m) - np.ones((m, m)) / m
        w = -0.5 * j @ d @ j
        lam = np.linalg.eigh(w)[0]
        lam = lam[np.argsort(-np.abs(lam), kind="stable")]
        k = int(req.get("k", 3))
        total = np.sum(lam**2)
        out["inpca"] = {
            "eigenvalues": lam.tolist(),
            "stress": [float(1 - np.sqrt(1 - np.sum(lam[: i + 1] ** 2) / total)) for i in range(k)],
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
