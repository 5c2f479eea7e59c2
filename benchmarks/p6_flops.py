#!/usr/bin/env python3
"""P6: achieved FLOP/s of one MiniLM + LoRA training step as a share of this machine's
measured fp32 matmul peak.

Peak: large square fp32 ``torch.matmul`` (n = 1024 / 2048 / 4096), ``2 n^3`` FLOPs each, best of
``--reps`` per size, best size wins. Step: the triage demo's model built through auditft
(``auditft.models.load_classifier`` + the ``lora`` tuner's ``lora_config`` with the suite's
options: r 8, alpha 16, dropout 0.05, classifier + pooler trained) on a real batch of the demo
(16 training texts, padded to the longest, max_length 64). FLOPs of forward + loss + backward
are counted once with ``torch.utils.flop_counter.FlopCounterMode``; the step (zero_grad,
forward, backward, AdamW step) is timed without the counter, median of ``--steps`` after two
warm-up steps. Target (issue 19): at least 40% of the peak.
Then 40 batches of the demo's epoch as the Trainer draws them, in random order and with
``batching: by_length``: the useful share counts only real (non-padding) tokens' FLOPs.

    .venv/bin/python benchmarks/p6_flops.py [--quick] [--steps 20] [--reps 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

SUITE = _bench.ROOT / "suites" / "triage-demo.yaml"
TARGET = 0.40


def matmul_peak(sizes: list[int], reps: int) -> dict:
    import torch

    per_size = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up
        best = float("inf")
        for _ in range(reps):
            started = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - started)
        per_size[n] = {"best_seconds": round(best, 5), "gflops": round(2 * n ** 3 / best / 1e9, 2)}
    peak = max(v["gflops"] for v in per_size.values())
    return {"sizes": per_size, "peak_gflops": peak}


def build_step(batch_size: int, max_length: int) -> tuple:
    import torch
    import yaml
    from peft import get_peft_model
    from transformers import set_seed

    from auditft.default_plugins.tuners.lora import LoraOptions, lora_config
    from auditft.models import load_classifier, load_tokenizer, resolve_model

    suite = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    set_seed(suite["data"]["seed"])
    base = resolve_model(suite["model"]["base"])
    labels = suite["data"]["labels"]
    model = get_peft_model(load_classifier(base, labels),
                           lora_config(LoraOptions(**suite["tuner"]["options"]), "classification"))
    tokenizer = load_tokenizer(base)
    rows = [json.loads(line) for line in (SUITE.parent / suite["data"]["train"]).read_text().splitlines()[:batch_size]]
    batch = tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
    batch["labels"] = torch.tensor([labels.index(r["label"]) if isinstance(r["label"], str) else int(r["label"])
                                    for r in rows])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, batch, optimizer


def count_flops(model, batch) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        out = model(**batch)
        forward = counter.get_total_flops()
        out.loss.backward()
    total = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(total), "forward": int(forward), "backward": int(total - forward), "by_op": by_op}


def time_steps(model, batch, optimizer, steps: int) -> list[float]:
    model.train()
    times = []
    for i in range(steps + 2):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return times


def time_forward_backward(model, batch, steps: int) -> dict:
    """Forward and backward timed separately (median), for the breakdown."""
    fwd, bwd = [], []
    for i in range(steps + 1):
        model.zero_grad(set_to_none=True)
        started = time.perf_counter()
        out = model(**batch)
        mid = time.perf_counter()
        out.loss.backward()
        end = time.perf_counter()
        if i >= 1:
            fwd.append(mid - started)
            bwd.append(end - mid)
    return {"forward_s": statistics.median(fwd), "backward_s": statistics.median(bwd)}


def useful_share(model, optimizer, batches: int, peak: float) -> dict:
    """Real batches of the demo's epoch as the Trainer draws them, ``random`` against
    ``by_length`` (auditft.batching): useful FLOP/s, i.e. each batch's counted FLOPs times its
    share of real (non-padding) tokens, over the summed step time, as a share of the peak."""
    import torch
    import yaml

    from auditft.batching import LengthBucketSampler
    from auditft.models import load_tokenizer, resolve_model

    suite = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    labels = suite["data"]["labels"]
    tokenizer = load_tokenizer(resolve_model(suite["model"]["base"]))
    rows = [json.loads(line) for line in (SUITE.parent / suite["data"]["train"]).read_text().splitlines()]
    lengths = [len(ids) for ids in tokenizer([r["text"] for r in rows], truncation=True, max_length=64)["input_ids"]]
    size, seed = 16, suite["data"]["seed"]
    orders = {"random": torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist(),
              "by_length": LengthBucketSampler(lengths, size, seed).order()}
    out = {}
    for name, order in orders.items():
        useful = padded_flops = seconds = 0.0
        real = padded = 0
        for b in range(batches):
            ids = order[b * size:(b + 1) * size]
            batch = tokenizer([rows[i]["text"] for i in ids], padding=True, truncation=True, max_length=64,
                              return_tensors="pt")
            batch["labels"] = torch.tensor([labels.index(rows[i]["label"]) for i in ids])
            flops = count_flops(model, batch)["total"]
            tokens = int(batch["attention_mask"].sum())
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - started
            useful += flops * tokens / batch["input_ids"].numel()
            padded_flops += flops
            real, padded = real + tokens, padded + batch["input_ids"].numel()
        out[name] = {"batches": batches, "seconds_per_step": round(seconds / batches, 4),
                     "real_token_share": round(real / padded, 4),
                     "achieved_share": round(padded_flops / seconds / 1e9 / peak, 4),
                     "useful_share": round(useful / seconds / 1e9 / peak, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed steps, 2 matmul sizes")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 20; quick 3)")
    parser.add_argument("--reps", type=int, default=None, help="matmuls per size (default 5; quick 2)")
    args = parser.parse_args()
    _bench.quiet()
    import torch

    _bench.silence_libraries()
    torch.set_num_threads(_bench.THREADS)
    steps = args.steps or (3 if args.quick else 20)
    reps = args.reps or (2 if args.quick else 5)
    sizes = [1024, 2048] if args.quick else [1024, 2048, 4096]
    machine = _bench.Machine()
    peak_before = matmul_peak(sizes, reps)
    model, batch, optimizer = build_step(16, 64)
    flops = count_flops(model, batch)
    times = time_steps(model, batch, optimizer, steps)
    parts = time_forward_backward(model, batch, max(3, steps // 2))
    peak_after = matmul_peak(sizes, reps)  # peak measured before and after: the best of both counts
    peak = max(peak_before["peak_gflops"], peak_after["peak_gflops"])
    step_s = statistics.median(times)
    achieved = flops["total"] / step_s / 1e9
    share = achieved / peak
    epoch = useful_share(model, optimizer, 6 if args.quick else 40, peak)
    figures = {
        "epoch_batches": epoch,
        "threads": torch.get_num_threads(), "batch_shape": list(batch["input_ids"].shape),
        "matmul_peak_gflops": peak, "matmul_before": peak_before, "matmul_after": peak_after,
        "step_flops": flops, "step_gflop": round(flops["total"] / 1e9, 3),
        "step_median_s": round(step_s, 4), "step_best_s": round(min(times), 4),
        "step_times_s": [round(t, 4) for t in times],
        "achieved_gflops": round(achieved, 2),
        "achieved_gflops_best_step": round(flops["total"] / min(times) / 1e9, 2),
        "forward_backward_median_s": {k: round(v, 4) for k, v in parts.items()},
        "forward_gflops": round(flops["forward"] / parts["forward_s"] / 1e9, 2),
        "backward_gflops": round(flops["backward"] / parts["backward_s"] / 1e9, 2),
    }
    p1 = _bench.RESULTS / "p1.json"
    if p1.exists():  # the same step inside the HF Trainer (P1's auditft side), for comparison
        spp = json.loads(p1.read_text())["figures"].get("seconds_per_step", {}).get("auditft")
        if spp:
            figures["trainer_seconds_per_step_from_p1"] = spp
            figures["trainer_share_of_peak_from_p1"] = round(flops["total"] / spp / 1e9 / peak, 4)
    print(f"  peak {peak:.1f} GFLOP/s; step {flops['total'] / 1e9:.2f} GFLOP in {step_s * 1000:.0f} ms "
          f"= {achieved:.1f} GFLOP/s", file=sys.stderr)
    for name, figure in epoch.items():
        print(f"  epoch batches, {name}: {figure['seconds_per_step'] * 1000:.0f} ms/step, "
              f"{figure['real_token_share']:.0%} real tokens, useful FLOP/s {figure['useful_share']:.1%} of peak",
              file=sys.stderr)
    _bench.finish("P6", what="MiniLM + LoRA training step: achieved FLOP/s as share of measured fp32 matmul peak",
                  metric="share", value=round(share, 4), op=">=", target=TARGET, quick=args.quick, machine=machine,
                  figures=figures, command=f".venv/bin/python benchmarks/p6_flops.py --steps {steps} --reps {reps}")


if __name__ == "__main__":
    main()
