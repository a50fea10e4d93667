#!/usr/bin/env python3
"""Replay a twinscope training trajectory in PyTorch (float32) for the engine cross-check.

Reads one JSON object (from the file named by the first argument, or stdin):
  {"widths": [2, 16, 16, 2], "activation": "tanh" | "relu" | "linear", "bias": true,
   "params": [...],            # flat float32 parameters in twinscope's layout order: for each layer
                               # weight [out, in] row-major, then bias [out] (nn.Linear's layout)
   "x": [...], "labels": [...],  # inputs [n, widths[0]] row-major and class indices
   "optimizer": {"kind": "sgd", "lr": 0.1, "momentum": 0, "weightDecay": 0}
              | {"kind": "adam" | "adamw", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                 "weightDecay": 0},
   "steps": 50, "threads": 1}

Runs `steps` full-batch steps of torch.optim.SGD / Adam / AdamW on mean softmax cross-entropy
(torch.nn.CrossEntropyLoss) and prints one JSON object:
  {"torch": "<version>", "losses": [loss before each step], "params": [final flat parameters]}
"""

import json
import sys


def main():
    import torch

    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            spec = json.load(f)
    else:
        spec = json.load(sys.stdin)
    torch.set_num_threads(int(spec.get("threads", 1)))
    widths = spec["widths"]
    bias = bool(spec.get("bias", True))
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "linear": torch.nn.Identity}[spec["activation"]]

    layers, linears = [], []
    for i in range(len(widths) - 1):
        lin = torch.nn.Linear(widths[i], widths[i + 1], bias=bias)
        linears.append(lin)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(act())
    model = torch.nn.Sequential(*layers).float()

    flat = torch.tensor(spec["params"], dtype=torch.float32)
    offset = 0
    with torch.no_grad():
        for lin in linears:
            for p in [lin.weight] + ([lin.bias] if bias else []):
                p.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
    if offset != flat.numel():
        raise ValueError(f"params has {flat.numel()} values, the model {offset}")

    x = torch.tensor(spec["x"], dtype=torch.float32).view(-1, widths[0])
    y = torch.tensor(spec["labels"], dtype=torch.long)
    o = spec["optimizer"]
    wd = o.get("weightDecay")
    if o["kind"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o.get("momentum", 0),
                              weight_decay=wd or 0)
    else:
        cls = torch.optim.Adam if o["kind"] == "adam" else torch.optim.AdamW
        kw = {} if wd is None else {"weight_decay": wd}
        opt = cls(model.parameters(), lr=o["lr"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)),
                  eps=o.get("eps", 1e-8), **kw)

    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(int(spec["steps"])):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    final = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    json.dump({"torch": torch.__version__, "losses": losses, "params": final.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
