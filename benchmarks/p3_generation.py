#!/usr/bin/env python3
"""P3: the hallucination audit's greedy generation on SmolLM2-135M-Instruct
(``builtin:smollm2-135m``) through ``ModelSession.generate`` against ``model.generate`` called
one prompt at a time.

Setup (not timed): the ``factqa-lora`` suite's ``lora`` adapter is trained for a couple of steps
through the tuner, as ``auditft run`` does, and loaded once through the tuner's ``load``.
Prompts: the probe set bundled with auditft (``auditft/resources/hallucination/probes.jsonl``),
taken round-robin over the probe types (answerable, unanswerable, grounded) up to ``--prompts``.
auditft side: ``ModelSession.generate(prompts)`` (chat template with the suite's system prompt,
left padding, length-sorted batches of ``eval_batch_size`` 32, KV cache, ``inference_mode``,
``max_new_tokens`` 24). Baseline: the same model object, for each prompt the same rendered
text and the same tokenisation (the whole prompt: the audit gives prompts the model's context,
not the training ``max_length``), ``model.generate(**enc, max_new_tokens=24, do_sample=False)``, decode. Throughput =
prompts / second; the two alternate, best of ``--repeats``; the answers are compared.

    .venv/bin/python benchmarks/p3_generation.py [--quick] [--prompts 64] [--repeats 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

SUITE = "suites/factqa-lora.yaml"
TARGET = 2.5


def round_robin(probes: list, n: int) -> list:
    by_type: dict[str, list] = {}
    for probe in probes:
        by_type.setdefault(probe.type, []).append(probe)
    picked, i = [], 0
    while len(picked) < min(n, len(probes)):
        for group in by_type.values():
            if i < len(group) and len(picked) < n:
                picked.append(group[i])
        i += 1
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 prompts, 1 repeat, 1 training step")
    parser.add_argument("--prompts", type=int, default=None, help="probe prompts (default 64 of 130; quick 4)")
    parser.add_argument("--repeats", type=int, default=None, help="timings per side (default 1)")
    parser.add_argument("--train-steps", type=int, default=None, help="setup training steps (default 2; quick 1)")
    args = parser.parse_args()
    _bench.quiet()
    n_prompts = args.prompts or (4 if args.quick else 64)
    repeats = args.repeats or 1
    train_steps = args.train_steps or (1 if args.quick else 2)
    machine = _bench.Machine()

    import torch
    from transformers import GenerationConfig, set_seed

    _bench.silence_libraries()
    torch.set_num_threads(_bench.THREADS)
    from auditft.chat import messages, render_prompt
    from auditft.default_plugins.audits.hallucination.probes import bundled_probes, load_probes
    from auditft.inference import ModelSession
    from auditft.jobs import TuneJob
    from auditft.plugins import make_plugin_manager
    from auditft.run import prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        suite_path = _bench.derived_suite(
            SUITE, tmp_path, name="bench-p3", training={"max_steps": train_steps, "checkpoint_steps": 0},
            audits=[{"kind": "hallucination", "options": {"samples": 2, "consistency_probes": 0}}])
        pm = make_plugin_manager(entry_points=False, env={})
        p = prepare(suite_path, pm)
        tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
        adapter_dir = tmp_path / "adapter"
        adapter_dir.mkdir()
        set_seed(p.suite.seed)
        started = time.perf_counter()
        tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data,
                           training=p.suite.tuner.training, options=p.tuner_options, seed=p.suite.seed,
                           adapter_dir=adapter_dir, work_dir=tmp_path / "work"))
        setup_s = time.perf_counter() - started

        training, generation = p.suite.tuner.training, p.suite.generation
        session = ModelSession(tuner=tuner, base=p.base, data=p.data, adapter_dir=adapter_dir,
                               max_length=training.max_length, batch_size=training.eval_batch_size,
                               seed=p.suite.seed, system_prompt=generation.system_prompt,
                               max_new_tokens=generation.max_new_tokens)
        model, tokenizer = session.adapter_model()  # one load through the tuner, used by both sides
        probes = round_robin(load_probes(bundled_probes()), n_prompts)
        prompts = [probe.prompt for probe in probes]
        texts = [render_prompt(tokenizer, messages(q, generation.system_prompt)) for q in prompts]
        lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        config = GenerationConfig(max_new_tokens=generation.max_new_tokens, do_sample=False,
                                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)

        def auditft_pass(todo: list[str]) -> tuple[float, list[str]]:
            session._cache.clear()  # generate() memoises by prompts; keep the loaded model
            session._cache["adapter"] = (model, tokenizer)
            started = time.perf_counter()
            answers = session.generate(todo)
            return time.perf_counter() - started, answers

        def naive_pass(texts: list[str]) -> tuple[float, list[str]]:
            side = tokenizer.truncation_side
            tokenizer.truncation_side = "left"  # the audit keeps the end of an over-long prompt
            answers = []
            started = time.perf_counter()
            try:
                for text in texts:
                    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
                    out = model.generate(**enc, generation_config=config)
                    answers.append(tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip())
            finally:
                tokenizer.truncation_side = side
            return time.perf_counter() - started, answers

        auditft_pass(prompts[:2])  # warm-up of both paths (first-call allocations)
        naive_pass(texts[:1])
        times: dict[str, list[float]] = {"auditft": [], "baseline": []}
        answers: dict[str, list[str]] = {}
        for r in range(repeats):
            for side in (("auditft", "baseline") if r % 2 == 0 else ("baseline", "auditft")):
                elapsed, answers[side] = auditft_pass(prompts) if side == "auditft" else naive_pass(texts)
                times[side].append(elapsed)
                print(f"  {side} pass {r + 1}: {elapsed:.1f} s ({len(prompts) / elapsed:.2f} prompts/s)",
                      file=sys.stderr)

    best = {side: min(v) for side, v in times.items()}
    throughput = {side: len(prompts) / best[side] for side in best}
    ratio = throughput["auditft"] / throughput["baseline"]
    same = sum(a == b for a, b in zip(answers["auditft"], answers["baseline"]))
    figures = {
        "prompts": len(prompts), "by_type": {t: sum(pr.type == t for pr in probes) for t in
                                             ("answerable", "unanswerable", "grounded")},
        "repeats": repeats, "batch_size": training.eval_batch_size, "max_new_tokens": generation.max_new_tokens,
        "prompt_tokens": {"min": min(lengths), "max": max(lengths), "over_max_length": sum(n > training.max_length
                                                                                           for n in lengths),
                          "max_length": training.max_length},
        "setup_training_steps": train_steps, "setup_seconds": round(setup_s, 2),
        "auditft_seconds": round(best["auditft"], 3), "baseline_seconds": round(best["baseline"], 3),
        "auditft_prompts_per_s": round(throughput["auditft"], 3),
        "baseline_prompts_per_s": round(throughput["baseline"], 3),
        "all_seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "identical_answers": same, "answer_examples": [
            {"prompt": q, "auditft": a, "baseline": b}
            for q, a, b in list(zip(prompts, answers["auditft"], answers["baseline"]))[:3]],
    }
    _bench.finish("P3", what="hallucination-audit greedy generation (ModelSession.generate, batched) vs "
                             "model.generate one prompt at a time, SmolLM2-135M + LoRA",
                  metric="throughput_ratio", value=round(ratio, 3), op=">=", target=TARGET, quick=args.quick,
                  machine=machine, figures=figures,
                  command=f".venv/bin/python benchmarks/p3_generation.py --prompts {len(prompts)} --repeats {repeats} "
                          f"--train-steps {train_steps}")


if __name__ == "__main__":
    main()
