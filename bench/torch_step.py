#!/usr/bin/env python3
"""Time one PyTorch SGD training step on the MLPs twinscope's `bench train` uses.

The step is the same as the twinscope engines' trainStep: forward, softmax cross-entropy (mean over
the batch), backward, optimizer update (plain SGD), and the loss read back to the host.

Prints one JSON object to stdout:
  {"torch": "<version>", "threads": n, "cases": [{"model": "mlp-784-256-256-10", "batch": 128,
   "engine": "torch", "threads": n, "msPerStep": n, "gflops": n}, ...], "timing": {...}}

FLOPs per step of an MLP: 6 * batch * sum(in * out) - 2 * batch * in0 * out0 over its dense layers
(forward 2x, backward 4x: gradients with respect to inputs and to weights, but no input gradient for
the first layer), the same count the TypeScript harness uses.

Usage: torch_step.py [--threads N] [--steps N] [--min-seconds S] [--warmup N] [--cases SPEC]
  --steps N      time exactly N steps (default: as many as fit in --min-seconds, at least 10)
  --cases SPEC   comma-separated model@batch, e.g. 784-256-256-10@128,2-64-64-2@32 (the default)
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


def time_case(torch, widths, batch, args):
    gen = torch.Generator().manual_seed(1234)
    model = build_mlp(torch, widths)
    x = torch.randn(batch, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (batch,), generator=gen)
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
    flops = 6 * batch * sum(widths[i] * widths[i + 1] for i in range(len(widths) - 1)) - 2 * batch * widths[0] * widths[1]
    return {
        "model": "mlp-" + "-".join(str(w) for w in widths),
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
    args = parser.parse_args()
    if args.threads < 1 or (args.steps is not None and args.steps < 1) or args.warmup < 0:
        parser.error("--threads and --steps must be positive, --warmup non-negative")
    try:
        cases = parse_cases(args.cases)
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
