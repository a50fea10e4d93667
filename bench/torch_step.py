#!/usr/bin/env python3
"""Time one PyTorch SGD training step on the MLPs and conv nets twinscope's `bench train` uses.

The step is the same as the twinscope engines' trainStep: forward, softmax cross-entropy (mean over
the batch), backward, optimizer update (plain SGD), and the loss read back to the host. Conv nets
run in train mode (BatchNorm on batch statistics, updating its running statistics).

Prints one JSON object to stdout:
  {"torch": "<version>", "threads": n, "cases": [{"model": "mlp-784-256-256-10", "batch": 128,
   "engine": "torch", "threads": n, "msPerStep": n, "gflops": n}, ...], "timing": {...}}

FLOPs per step of an MLP: 6 * batch * sum(in * out) - 2 * batch * in0 * out0 over its dense layers
(forward 2x, backward 4x: gradients with respect to inputs and to weights, but no input gradient for
the first layer), the same count the TypeScript harness uses.

Conv nets come as a JSON list (--nets) of {"model": name, "spec": twinscope model spec ("cnn" or
"resnet", see src/model/net.ts), "image": [C, H, W], "classes": n, "batch": n, "flops": FLOPs per
step (counted by the TypeScript harness, so both sides divide the same count)}. The layers are
PyTorch's: nn.Conv2d (3x3, padding 1; bias only without a norm), nn.BatchNorm2d / nn.GroupNorm,
nn.MaxPool2d(2) / nn.AvgPool2d(2), nn.Linear; ResNets as He et al. 2016 (basic blocks, 1x1
stride-2 shortcut convs with a norm where the shape changes, global average pooling).

Usage: torch_step.py [--threads N] [--steps N] [--min-seconds S] [--warmup N] [--cases SPEC] [--nets JSON]
  --steps N      time exactly N steps (default: as many as fit in --min-seconds, at least 10)
  --cases SPEC   comma-separated model@batch, e.g. 784-256-256-10@128,2-64-64-2@32 (the default);
                 an empty string times no MLP
  --nets JSON    conv nets to time (default: none)
"""

import argparse
import json
import statistics
import sys
import time

DEFAULT_CASES = "784-256-256-10@128,2-64-64-2@32"
LR = 0.01
MIN_STEPS = 10
MAX_STEPS = 100_000


def parse_cases(spec):
    cases = []
    if not spec.strip():
        return cases
    for item in spec.split(","):
        widths_text, _, batch_text = item.strip().partition("@")
        widths = [int(w) for w in widths_text.split("-")]
        if len(widths) < 2 or not batch_text or any(w < 1 for w in widths):
            raise ValueError(f"bad case '{item}': expected widths joined by '-' then '@batch'")
        cases.append((widths, int(batch_text)))
    return cases


def build_mlp(torch, widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def build_net(torch, spec, image, classes):
    """A twinscope "cnn" or "resnet" model spec as torch.nn layers (see the module docstring)."""
    nn = torch.nn
    norm_kind = spec.get("norm", "none" if spec["kind"] == "cnn" else "batch")
    groups = spec.get("groups", 4)

    def conv_norm(cin, cout, k, stride, pad):
        conv = nn.Conv2d(cin, cout, k, stride, pad, bias=norm_kind == "none")
        if norm_kind == "none":
            return conv
        if norm_kind == "batch":
            norm = nn.BatchNorm2d(cout)
        else:
            norm = nn.GroupNorm(1 if norm_kind == "layer" else groups, cout)
        return nn.Sequential(conv, norm)

    if spec["kind"] == "cnn":
        c, h, w = image
        layers = []
        for out in spec["channels"]:
            pool = nn.MaxPool2d(2) if spec.get("pool", "max") == "max" else nn.AvgPool2d(2)
            layers += [conv_norm(c, out, 3, 1, 1), nn.ReLU(), pool]
            c, h, w = out, h // 2, w // 2
        layers.append(nn.Flatten())
        width = c * h * w
        for hidden in spec.get("dense", []):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, classes))
        return nn.Sequential(*layers)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = conv_norm(cin, cout, 3, stride, 1)
            self.b = conv_norm(cout, cout, 3, 1, 1)
            self.shortcut = conv_norm(cin, cout, 1, stride, 0) if stride != 1 or cin != cout else None

        def forward(self, x):
            y = self.b(torch.relu(self.a(x)))
            return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))

    class Gap(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    n = (spec["depth"] - 2) // 6
    width = spec.get("width", 1)
    layers = [conv_norm(image[0], 16 * width, 3, 1, 1), nn.ReLU()]
    c = 16 * width
    for stage, base in enumerate([16, 32, 64]):
        for i in range(n):
            layers.append(Block(c, base * width, 2 if stage > 0 and i == 0 else 1))
            c = base * width
    layers += [Gap(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


def time_case(torch, widths, batch, args):
    gen = torch.Generator().manual_seed(1234)
    model = build_mlp(torch, widths)
    x = torch.randn(batch, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (batch,), generator=gen)
    flops = 6 * batch * sum(widths[i] * widths[i + 1] for i in range(len(widths) - 1)) - 2 * batch * widths[0] * widths[1]
    return time_model(torch, model, x, y, args, "mlp-" + "-".join(str(w) for w in widths), batch, flops)


def time_net(torch, case, args):
    gen = torch.Generator().manual_seed(1234)
    model = build_net(torch, case["spec"], case["image"], case["classes"])
    model.train()
    batch = case["batch"]
    x = torch.randn(batch, *case["image"], generator=gen)
    y = torch.randint(0, case["classes"], (batch,), generator=gen)
    return time_model(torch, model, x, y, args, case["model"], batch, case["flops"])


def time_model(torch, model, x, y, args, name, batch, flops):
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if args.steps is not None:
            if len(times) >= args.steps:
                break
        elif (
            len(times) >= MIN_STEPS and time.perf_counter() - started >= args.min_seconds
        ) or len(times) >= MAX_STEPS:
            break
    ms = statistics.median(times) * 1e3
    return {
        "model": name,
        "batch": batch,
        "engine": "torch",
        "threads": args.threads,
        "msPerStep": ms,
        "gflops": flops / (ms * 1e6),
        "timedSteps": len(times),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--nets", default="[]")
    args = parser.parse_args()
    if args.threads < 1 or (args.steps is not None and args.steps < 1) or args.warmup < 0:
        parser.error("--threads and --steps must be positive, --warmup non-negative")
    try:
        cases = parse_cases(args.cases)
        nets = json.loads(args.nets)
        if not isinstance(nets, list):
            raise ValueError("--nets must be a JSON list")
    except ValueError as err:
        parser.error(str(err))

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    torch.manual_seed(0)

    results = [time_case(torch, widths, batch, args) for widths, batch in cases]
    results += [time_net(torch, case, args) for case in nets]
    json.dump(
        {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cases": results,
            "timing": {
                "warmupSteps": args.warmup,
                "steps": args.steps,
                "minSeconds": args.min_seconds,
                "statistic": "median",
            },
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
