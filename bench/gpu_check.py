"""The GPU check: estimator vs measured peak memory, and training speed (tokens/s, MFU) through the course's Trainer
settings, on any CUDA machine, with no Hub access (random-initialised models built from the published configs in
`ft_course.memory.KNOWN_CONFIGS`: memory and speed do not depend on the weights' values).

Usage (from the repository root):
    python bench/gpu_check.py                       # on a CUDA GPU, ~7 minutes on an H200; writes bench/results/gpu_<device>.md/.csv
    python bench/gpu_check.py --only mem            # a section: mem, speed, cells (comma-separated)
    python bench/gpu_check.py --cpu-smoke --out /tmp/x   # the whole logic on CPU with tiny shapes, in seconds (tests/test_gpu_check.py)
    python bench/gpu_check.py --report bench/results/gpu_NVIDIA_H200.csv   # recompute the predictions with the current estimator

Sections, most important first; each row is written to the CSV as soon as it is measured, and a failing row (OOM, a
compiler error) records its error and the script goes on:
- mem: notebook 10's method on the GPU: peak `torch.cuda.max_memory_allocated` over two full-size training steps
  (bf16 autocast, fused AdamW or bitsandbytes' 8-bit AdamW, model in train mode), against `estimate_memory` minus the
  CUDA context; QLoRA through `_build_for_spec`, i.e. `load_4bit` + `prepare_model_for_kbit_training` as notebook 05 does.
- speed: tokens/s and MFU through `make_training_args(..., get_profile("gpu"))` and `Trainer`, `max_steps` short,
  timing only the steps after the warm-up; the levers side by side (Liger's fused linear cross-entropy, batch size,
  gradient checkpointing, torch.compile). MFU = tokens/s × (6N + 12·L·d·s) / peak dense bf16 FLOP/s (by device name).
- cells: the logic of the notebooks' `#| cuda` cells that need no Hub weights (05's 7B QLoRA cells on a random
  Qwen2.5-7B; 10's `measure_cuda_peak` is the mem section; 07's SFT cell needs the Hub model, its dataset and trl: not covered).
"""
from __future__ import annotations
import argparse, csv, datetime, gc, json, os, platform, shlex, sys, tempfile, time, traceback, warnings
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
from transformers import TrainerCallback

from ft_course.measure import peak_memory_mb, reset_peak_memory   # on CUDA: reset_peak_memory_stats / max_memory_allocated
from ft_course.memory import (CUDA_CONTEXT_BYTES, KNOWN_CONFIGS, MemorySpec, _build_for_spec, as_config, estimate_memory,
                              model_shape)

RES = Path(__file__).parent/"results"
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "GH200": 989e12, "A100": 312e12, "A800": 312e12,
             "L40S": 362e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12, "T4": 65e12}   # dense bf16 (T4: fp16) FLOP/s, datasheets
FIELDS = ["section", "name", "model", "method", "batch_size", "seq_len", "precision", "optimizer", "gradient_checkpointing",
          "settings", "measured_gib", "predicted_gib", "error_pct", "tokens_per_s", "mfu_pct", "step_ms", "peak_gib",
          "status", "error", "seconds"]
TINY = dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=512, tie_word_embeddings=True)   # --cpu-smoke: every row on this shape

def peak_flops(name:str)->float|None:
    "Dense bf16 peak FLOP/s of a device, from its name (None if unknown)"
    for k in sorted(PEAK_BF16, key=len, reverse=True):
        if k in name: return PEAK_BF16[k]
    return None

def flops_per_token(config, seq_len:int)->float:
    "Training FLOPs per token: 6N (forward + backward through every weight) + 12·L·d·s (attention scores and values)"
    S = model_shape(config)
    return 6 * S.n_params + 12 * S.n_layers * S.h * seq_len

# ---------------------------------------------------------------------------------------------------------------- mem
MEM = [  # (name, config, spec fields): the quoted issue rows first, then QLoRA on tied heads, then the rest
    ("qwen7b_qlora_ckpt_b1x512", "Qwen/Qwen2.5-7B-Instruct", dict(method="qlora", batch_size=1, seq_len=512, gradient_checkpointing=True)),
    ("llama8b_qlora_ckpt_b4x1024", "Llama-3.1-8B", dict(method="qlora", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("llama1b_qlora_ckpt_b4x1024", "Llama-3.2-1B", dict(method="qlora", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("qwen05b_qlora_r8_b4x512", "Qwen2.5-0.5B", dict(method="qlora", batch_size=4, seq_len=512, lora_r=8)),
    ("llama3b_full_ckpt_b4x1024", "Llama-3.2-3B", dict(method="full", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("llama3b_full_b4x1024", "Llama-3.2-3B", dict(method="full", batch_size=4, seq_len=1024)),
    ("llama1b_full_b8x1024", "Llama-3.2-1B", dict(method="full", batch_size=8, seq_len=1024)),
    ("llama1b_full_ckpt_b8x1024", "Llama-3.2-1B", dict(method="full", batch_size=8, seq_len=1024, gradient_checkpointing=True)),
    ("llama1b_full_8bit_ckpt_b8x1024", "Llama-3.2-1B", dict(method="full", batch_size=8, seq_len=1024, gradient_checkpointing=True, optimizer="adamw_8bit")),
    ("llama1b_lora_b8x1024", "Llama-3.2-1B", dict(method="lora", batch_size=8, seq_len=1024)),
    ("llama1b_lora_ckpt_b8x1024", "Llama-3.2-1B", dict(method="lora", batch_size=8, seq_len=1024, gradient_checkpointing=True)),
    ("llama1b_qlora_b8x1024", "Llama-3.2-1B", dict(method="qlora", batch_size=8, seq_len=1024)),
    ("llama1b_prompt_b8x1024", "Llama-3.2-1B", dict(method="prompt_tuning", batch_size=8, seq_len=1024)),
    ("qwen05b_full_b8x512", "Qwen2.5-0.5B", dict(method="full", batch_size=8, seq_len=512)),
    ("qwen05b_lora_b8x512", "Qwen2.5-0.5B", dict(method="lora", batch_size=8, seq_len=512)),
    ("qwen05b_qlora_ckpt_b8x512", "Qwen2.5-0.5B", dict(method="qlora", batch_size=8, seq_len=512, gradient_checkpointing=True)),
    ("llama3b_qlora_ckpt_b4x1024", "Llama-3.2-3B", dict(method="qlora", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("llama3b_lora_ckpt_b4x1024", "Llama-3.2-3B", dict(method="lora", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("llama8b_lora_ckpt_b4x1024", "Llama-3.1-8B", dict(method="lora", batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ("llama8b_qlora_b1x1024", "Llama-3.1-8B", dict(method="qlora", batch_size=1, seq_len=1024)),
    ("llama8b_full_8bit_ckpt_b1x1024", "Llama-3.1-8B", dict(method="full", batch_size=1, seq_len=1024, gradient_checkpointing=True, optimizer="adamw_8bit")),
]

MEM_FIRST = 8   # section 'mem': these first (the quoted setups, QLoRA with tied heads); 'mem2': the rest, after 'speed'
SMOKE_ROWS = {"llama1b_qlora_ckpt_b4x1024", "qwen05b_qlora_r8_b4x512", "llama1b_full_ckpt_b8x1024", "llama1b_full_8bit_ckpt_b8x1024",
              "llama1b_lora_b8x1024", "llama1b_prompt_b8x1024", "full default b8", "full liger ckpt b32", "lora default b8",
              "qlora default b8", "05 qlora 7B cells (T4 recipe)", "check_device (top of every notebook)"}   # --cpu-smoke: one of each path

def _free():
    gc.collect()
    if torch.cuda.is_available(): torch.cuda.empty_cache(); reset_peak_memory()

def _optimizer(params, spec:MemorySpec, dev:str):
    if spec.optimizer == "adamw_8bit":
        import bitsandbytes as bnb; return bnb.optim.AdamW8bit(params, lr=1e-5)
    if spec.optimizer == "sgd": return torch.optim.SGD(params, lr=1e-5)
    return torch.optim.AdamW(params, lr=1e-5, fused=dev == "cuda")   # Trainer's default on a GPU: adamw_torch_fused

def measure_mem(config, spec:MemorySpec, dev:str, steps:int=2)->int:
    "Peak bytes allocated over `steps` full-size training steps (notebook 10's `measure_cuda_peak`; weights included)"
    cfg = as_config(config)
    model = _build_for_spec(cfg, spec, init_device=dev)   # random init on the GPU: seconds, not minutes (QLoRA: load_4bit places it)
    model.train()
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], spec, dev)
    _free()
    built = torch.cuda.memory_allocated() if dev == "cuda" else 0
    for _ in range(steps):
        ids = torch.randint(3, cfg.vocab_size, (spec.batch_size, spec.seq_len), device=dev)
        with torch.autocast(dev, dtype=torch.bfloat16 if spec.precision == "bf16" else torch.float16, enabled=spec.mixed and dev == "cuda"):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); del out
    peak = round(peak_memory_mb() * 2**20) if dev == "cuda" else 0   # bytes
    after = torch.cuda.memory_allocated() if dev == "cuda" else 0
    del model, opt; _free()
    return peak, built, after

def predicted(config, spec:MemorySpec)->float:
    "The estimator's prediction of what `max_memory_allocated` reads (estimate minus the CUDA context), GiB"
    return (estimate_memory(config, spec).total - (CUDA_CONTEXT_BYTES if spec.device == "cuda" else 0)) / 2**30

# -------------------------------------------------------------------------------------------------------------- speed
SPEED = [  # (name, method, batch, TrainingArguments overrides, lora_dropout): 1B shape, 1,024 tokens; default first
    ("full default b8", "full", 8, {}, None),
    ("full liger b16", "full", 16, dict(use_liger_kernel=True), None),
    ("full liger b32", "full", 32, dict(use_liger_kernel=True), None),
    ("full ckpt b8", "full", 8, dict(gradient_checkpointing=True), None),
    ("full liger ckpt b32", "full", 32, dict(use_liger_kernel=True, gradient_checkpointing=True), None),
    ("lora default b8", "lora", 8, {}, 0.05),
    ("lora liger b32", "lora", 32, dict(use_liger_kernel=True), 0.05),
    ("lora liger dropout0 b32", "lora", 32, dict(use_liger_kernel=True), 0.0),
    ("lora liger dropout0 b64", "lora", 64, dict(use_liger_kernel=True), 0.0),
    ("qlora default b8", "qlora", 8, {}, 0.05),
    ("qlora liger dropout0 b32", "qlora", 32, dict(use_liger_kernel=True), 0.0),
    ("full compile b8", "full", 8, dict(torch_compile=True), None),
    ("full compile b16", "full", 16, dict(torch_compile=True), None),
    ("full compile b32", "full", 32, dict(torch_compile=True), None),
    ("lora compile dropout0 b16", "lora", 16, dict(torch_compile=True), 0.0),
    ("lora compile dropout0 b32", "lora", 32, dict(torch_compile=True), 0.0),
    ("full liger+compile b16", "full", 16, dict(use_liger_kernel=True, torch_compile=True), None),
]

class RandomTokens(torch.utils.data.Dataset):
    "Fixed-length random token sequences (no padding): speed does not depend on the values"
    def __init__(self, n, seq_len, vocab): g = torch.Generator().manual_seed(0); self.x = torch.randint(3, vocab, (n, seq_len), generator=g)
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return {"input_ids": self.x[i], "labels": self.x[i]}

class StepTimer(TrainerCallback):
    "Wall time of each optimizer step, synchronised"
    def __init__(self): self.t = []
    def on_step_begin(self, *a, **k):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.t0 = time.perf_counter()
    def on_step_end(self, *a, **k):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.t.append(time.perf_counter() - self.t0)

def build_train_model(config, method:str, dev:str, lora_dropout:float|None, folder:str|None=None):
    "A random model for `method` as the notebooks set it up (LoRA r16/alpha 32 on all linear layers; QLoRA via `load_4bit`)"
    import peft
    from transformers import AutoModelForCausalLM
    cfg = as_config(config)
    if method == "qlora":
        from ft_course.qlora import load_4bit
        model = load_4bit(folder, compute_dtype="bfloat16" if dev == "cuda" else "float32", dtype=torch.bfloat16 if dev == "cuda" else torch.float32,
                          **({"device_map": {"": 0}} if dev == "cuda" else {}))
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        torch.manual_seed(0)
        with torch.device(dev): model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if method == "lora" and dev == "cuda" else torch.float32)
    if method in ("lora", "qlora"):
        model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=lora_dropout,
                                                           target_modules="all-linear"))
    return model

def measure_speed(config, method:str, batch:int, overrides:dict, lora_dropout, profile, dev:str, seq_len:int,
                  steps:int, warmup:int, folder:str|None=None)->dict:
    from transformers import Trainer, default_data_collator
    from ft_course.train import make_training_args
    from transformers.models.llama import modeling_llama as ml
    saved = {k: getattr(ml, k) for k in ("LlamaRMSNorm", "LlamaMLP", "apply_rotary_pos_emb")}   # Liger replaces these module-wide
    try: return _measure_speed(config, method, batch, overrides, lora_dropout, profile, dev, seq_len, steps, warmup, folder)
    finally:
        for k, v in saved.items(): setattr(ml, k, v)

def _measure_speed(config, method, batch, overrides, lora_dropout, profile, dev, seq_len, steps, warmup, folder):
    from transformers import Trainer, default_data_collator
    from ft_course.train import make_training_args
    model = build_train_model(config, method, dev, lora_dropout, folder)
    kw = dict(per_device_train_batch_size=batch, gradient_accumulation_steps=1, max_steps=steps + warmup, eval_strategy="no",
              logging_strategy="no", disable_tqdm=True, learning_rate=1e-5, warmup_steps=0)
    if overrides.get("gradient_checkpointing"): kw["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    with tempfile.TemporaryDirectory() as d:
        args = make_training_args(d, profile, **(kw | overrides))
        timer = StepTimer()
        tr = Trainer(model=model, args=args, train_dataset=RandomTokens(batch * (steps + warmup), seq_len, as_config(config).vocab_size),
                     data_collator=default_data_collator, callbacks=[timer])
        _free()
        tr.train()
    t = sorted(timer.t[warmup:]); med = t[len(t) // 2]
    tok_s = batch * seq_len / med
    peak = peak_memory_mb() / 2**10 if dev == "cuda" else 0.0   # GiB
    pf = peak_flops(torch.cuda.get_device_name(0)) if dev == "cuda" else None
    mfu = 100 * tok_s * flops_per_token(config, seq_len) / pf if pf else None
    del tr, model; _free()
    return dict(tokens_per_s=round(tok_s), mfu_pct=None if mfu is None else round(mfu, 1), step_ms=round(1000 * med, 1),
                peak_gib=round(peak, 2), settings=json.dumps(overrides | ({"lora_dropout": lora_dropout} if lora_dropout is not None else {}),
                                                               sort_keys=True), optim=args.optim.value if hasattr(args.optim, "value") else str(args.optim))

# -------------------------------------------------------------------------------------------------------------- cells
def cell_05_qlora_7b(config, dev:str, folder:str, seq_len:int)->dict:
    "Notebook 05's `#| cuda` cells on a random model: load_4bit(fp16) -> prepare_model_for_kbit_training -> LoRA r16 -> Trainer, the T4 recipe"
    import peft
    from transformers import Trainer, default_data_collator
    from ft_course.qlora import load_4bit
    from ft_course.train import make_training_args
    from ft_course.setup import get_profile
    fp16 = dev == "cuda"
    model = load_4bit(folder, compute_dtype="float16" if fp16 else "float32", **({"device_map": {"": 0}} if dev == "cuda" else {}))
    weights = model.get_memory_footprint() / 2**30
    model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    pm = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
    trainable = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    with tempfile.TemporaryDirectory() as d:
        prof = get_profile("gpu") if dev == "cuda" else _cpu_gpu_profile()
        args = make_training_args(d, prof, per_device_train_batch_size=1, per_device_eval_batch_size=1, gradient_accumulation_steps=4,
                                  learning_rate=2e-4, max_steps=2, fp16=fp16, bf16=False, optim="paged_adamw_8bit" if dev == "cuda" else "adamw_torch",
                                  eval_strategy="no", logging_strategy="no", disable_tqdm=True)
        _free()
        out = Trainer(model=pm, args=args, train_dataset=RandomTokens(8, seq_len, as_config(config).vocab_size),
                      data_collator=default_data_collator).train()
    peak = peak_memory_mb() / 2**10 if dev == "cuda" else 0.0   # GiB
    del pm, model; _free()
    return dict(weights_gib=round(weights, 2), trainable=trainable, steps=out.global_step, peak_gib=round(peak, 2),
                s_per_step=round(out.metrics["train_runtime"] / out.global_step, 2))

def _cpu_gpu_profile():
    "The gpu profile's settings on a machine without a GPU (--cpu-smoke only)"
    from ft_course.setup import _make_profile
    return _make_profile("gpu")

# --------------------------------------------------------------------------------------------------------------- main
def versions()->dict:
    import importlib.metadata as md
    v = {"python": platform.python_version()}
    for p in ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "liger-kernel", "triton"):
        try: v[p] = md.version(p)
        except Exception: v[p] = "-"
    return v

class Rows:
    "Append rows to a CSV as they come, and keep them"
    def __init__(self, path:Path): self.path, self.rows = path, []; self._w = None
    def add(self, row:dict):
        row = {k: row.get(k, "") for k in FIELDS}; self.rows.append(row)
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            if new: w.writeheader()
            w.writerow(row)
        print(" | ".join(f"{k}={row[k]}" for k in ("section", "name", "measured_gib", "predicted_gib", "error_pct", "tokens_per_s",
                                                   "mfu_pct", "peak_gib", "status") if row[k] != ""), flush=True)

def run(args):
    dev = "cpu" if args.cpu_smoke else "cuda"
    if dev == "cuda" and not torch.cuda.is_available(): sys.exit("No CUDA GPU: use --cpu-smoke to check the logic on CPU.")
    devname = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu-smoke"
    out = Path(args.out or RES); out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_" + "".join(c if c.isalnum() else "_" for c in devname).strip("_")
    csv_path = out/f"{stem}.csv"
    if csv_path.exists(): csv_path.unlink()
    meta = dict(device=devname, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                command="python bench/gpu_check.py " + " ".join(shlex.quote(a) for a in args.argv), versions=versions(),
                peak_bf16_tflops=(peak_flops(devname) or 0) / 1e12)
    (out/f"{stem}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta), flush=True)
    rows, t_start = Rows(csv_path), time.time()
    sections = args.only.split(",") if args.only else ["mem", "speed", "cells", "mem2"]
    names = set(args.rows.split(",")) if args.rows else (SMOKE_ROWS if args.cpu_smoke else None)
    cfg_of = (lambda c: TINY) if args.cpu_smoke else (lambda c: c)
    over = lambda: args.budget_s and time.time() - t_start > args.budget_s
    seq = (lambda s: 32) if args.cpu_smoke else (lambda s: s)

    def guarded(section, name, fn, base:dict):
        if over(): rows.add(base | dict(section=section, name=name, status="skipped", error="time budget")); return
        t0 = time.time()
        try: res = fn(); rows.add(base | res | dict(section=section, name=name, status="ok", seconds=round(time.time() - t0, 1)))
        except Exception as e:
            traceback.print_exc()
            rows.add(base | dict(section=section, name=name, status="error", error=f"{type(e).__name__}: {str(e)[:300]}".replace("\n", " "),
                                 seconds=round(time.time() - t0, 1)))
        _free()

    def mem_rows(rows_):
        for name, model, kw in rows_:
            if names and name not in names: continue
            spec = MemorySpec(**(dict(precision="bf16", device="cuda") | kw | (dict(batch_size=2, seq_len=32, precision="fp32", device="cpu") if args.cpu_smoke else {})))
            base = dict(model=model, method=spec.method, batch_size=spec.batch_size, seq_len=spec.seq_len, precision=spec.precision,
                        optimizer=spec.optimizer, gradient_checkpointing=spec.gradient_checkpointing, settings=json.dumps({"lora_r": spec.lora_r}))
            def fn(model=model, spec=spec):
                m, built, after = measure_mem(cfg_of(model), spec, dev); m /= 2**30; p = predicted(cfg_of(model), spec)
                return dict(measured_gib=round(m, 3), predicted_gib=round(p, 3), error_pct=round(100 * (p / m - 1), 1) if m else "",
                            settings=json.dumps({"lora_r": spec.lora_r, "built_gib": round(built / 2**30, 3), "after_steps_gib": round(after / 2**30, 3)}))
            guarded("mem", name, fn, base)

    def speed_rows():
        folder_1b = tempfile.mkdtemp(prefix="gpu_check_")   # a saved random 1B (bf16) for the QLoRA speed rows
        from transformers import AutoModelForCausalLM
        cfg1b = cfg_of("Llama-3.2-1B"); s1b = seq(1024)
        prof = get_gpu_profile(dev)
        saved = False
        for name, method, batch, overrides, drop in SPEED:
            if names and name not in names: continue
            if args.cpu_smoke:   # Liger's Triton kernels and torch.compile's Inductor need a GPU to be worth checking: dropped here
                batch, overrides = 2, {k: v for k, v in overrides.items() if k not in ("use_liger_kernel", "torch_compile")}
            if method == "qlora" and not saved:
                with torch.device(dev): AutoModelForCausalLM.from_config(as_config(cfg1b), dtype=torch.bfloat16 if dev == "cuda" else torch.float32).save_pretrained(folder_1b)
                saved = True
            base = dict(model="Llama-3.2-1B", method=method, batch_size=batch, seq_len=s1b, precision=prof.precision,
                        optimizer="adamw_torch_fused" if dev == "cuda" else "adamw_torch",
                        gradient_checkpointing=bool(overrides.get("gradient_checkpointing")))
            def fn(method=method, batch=batch, overrides=overrides, drop=drop):
                r = measure_speed(cfg1b, method, batch, overrides, drop, prof, dev, s1b, steps=args.steps, warmup=args.warmup, folder=folder_1b)
                r.pop("optim"); return r
            guarded("speed", name, fn, base)

    def cell_rows():
        from transformers import AutoModelForCausalLM
        cfg7 = cfg_of("Qwen/Qwen2.5-7B-Instruct"); d7 = tempfile.mkdtemp(prefix="gpu_check_7b_")
        base = dict(model="Qwen/Qwen2.5-7B-Instruct", method="qlora", batch_size=1, seq_len=seq(512), precision="fp16",
                    optimizer="paged_adamw_8bit", gradient_checkpointing=True, settings=json.dumps(dict(gradient_accumulation_steps=4, lora_r=16)))
        def fn():
            with torch.device(dev): m = AutoModelForCausalLM.from_config(as_config(cfg7), dtype=torch.float16 if dev == "cuda" else torch.float32)
            m.save_pretrained(d7); del m; _free()
            r = cell_05_qlora_7b(cfg7, dev, d7, seq(512))
            spec = MemorySpec(method="qlora", batch_size=1, seq_len=seq(512), precision="fp16" if dev == "cuda" else "fp32", optimizer="adamw_8bit",
                              gradient_checkpointing=True, device=dev)
            p = predicted(cfg7, spec)
            return dict(measured_gib=r["peak_gib"], predicted_gib=round(p, 3), error_pct=round(100 * (p / r["peak_gib"] - 1), 1) if r["peak_gib"] else "",
                        step_ms=1000 * r["s_per_step"], settings=json.dumps(json.loads(base["settings"]) | r))
        if not names or "05 qlora 7B cells (T4 recipe)" in names: guarded("cells", "05 qlora 7B cells (T4 recipe)", fn, base)
        def fn_check():   # the top of every notebook (check_device, 00a) and its live fit estimate (check_fit, 10)
            from ft_course.vocabulary import check_device
            from ft_course.memory import check_fit
            r = check_device("05_qlora_7b") | check_fit("Llama-3.1-8B", method="qlora", batch_size=4, seq_len=1024,
                                                        gradient_checkpointing=True)
            return dict(settings=json.dumps(r))
        if not names or "check_device (top of every notebook)" in names: guarded("cells", "check_device (top of every notebook)", fn_check, dict(model="Llama-3.1-8B", method="qlora"))
    todo = {"mem": lambda: mem_rows(MEM[:MEM_FIRST]), "speed": speed_rows, "cells": cell_rows, "mem2": lambda: mem_rows(MEM[MEM_FIRST:])}
    for sec in sections: todo[sec]()   # in the order given; default: key memory rows, speed, notebook cells, other memory rows
    write_md(csv_path, meta, out/f"{stem}.md")
    print(f"done in {time.time() - t_start:.0f} s; {csv_path}", flush=True)

def get_gpu_profile(dev):
    from ft_course.setup import get_profile
    return get_profile("gpu") if dev == "cuda" else _cpu_gpu_profile()

def write_md(csv_path:Path, meta:dict, md_path:Path, recompute:bool=False):
    "The markdown report; with `recompute`, the predictions come from the current estimator"
    import pandas as pd
    df = pd.read_csv(csv_path)
    if recompute:
        for i, r in df[(df.section != "speed") & df.status.isin(["ok", "liger-modules"])].iterrows():
            if pd.isna(r.measured_gib) or r.section == "cells" and "check_device" in r["name"]: continue
            spec = MemorySpec(method=r.method, batch_size=int(r.batch_size), seq_len=int(r.seq_len), precision=r.precision,
                              optimizer="adamw_8bit" if "8bit" in str(r.optimizer) else r.optimizer,
                              gradient_checkpointing=bool(r.gradient_checkpointing),
                              lora_r=json.loads(r.settings).get("lora_r", 16), device="cuda")
            p = predicted(r.model, spec); df.loc[i, "predicted_gib"] = round(p, 3); df.loc[i, "error_pct"] = round(100 * (p / r.measured_gib - 1), 1)
        df.to_csv(csv_path, index=False)
    v = meta["versions"]
    lines = [f"# GPU check: {meta['device']}", "",
             f"Date: {meta['date']}. Command: `{meta['command']}`. Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
             f"Peak dense bf16 used for MFU: {meta['peak_bf16_tflops']:.0f} TFLOP/s. Random-initialised models from `KNOWN_CONFIGS` (no Hub).", ""]
    lines += [f"- {n}" for n in meta.get("notes", [])] + ([""] if meta.get("notes") else [])
    mem = df[df.section == "mem"]
    if len(mem):
        ok = mem[mem.status == "ok"]
        lines += ["## Memory: estimator vs measured", "",
                  "`max_memory_allocated` over two full-size steps (bf16 autocast, fused AdamW or 8-bit AdamW, train mode) vs "
                  "`estimate_memory(...).total - CUDA_CONTEXT_BYTES`; QLoRA via `load_4bit` + `prepare_model_for_kbit_training`. "
                  "The bar: every error between −5% and +10% (a positive error is a safe over-estimate).", ""]
        if len(ok):
            e = ok.error_pct.astype(float)
            lines += [f"{len(ok)} setups: mean |error| {e.abs().mean():.1f}%, range {e.min():+.1f}% … {e.max():+.1f}%, "
                      f"{((e >= -5) & (e <= 10)).sum()} of {len(ok)} within −5%…+10%.", ""]
        lines += [_table(mem, ["name", "model", "method", "batch_size", "seq_len", "optimizer", "gradient_checkpointing",
                               "measured_gib", "predicted_gib", "error_pct", "status", "error"]), ""]
    sp = df[df.section == "speed"]
    if len(sp):
        lines += ["## Speed: Llama-3.2-1B shape through `make_training_args` (gpu profile) + `Trainer`", "",
                  "tokens/s = batch × tokens / median step time after the warm-up steps; MFU = tokens/s × (6N + 12·L·d·s) / peak; "
                  "peak = `max_memory_allocated`.", "",
                  _table(sp, ["name", "method", "batch_size", "seq_len", "settings", "tokens_per_s", "mfu_pct", "step_ms", "peak_gib", "status", "error"]), ""]
    ce = df[df.section == "cells"]
    if len(ce):
        lines += ["## Notebook `#| cuda` cells (logic, random weights)", "",
                  _table(ce, ["name", "model", "precision", "optimizer", "measured_gib", "predicted_gib", "error_pct", "settings", "status", "error"]), ""]
    md_path.write_text("\n".join(lines))

def _table(df, cols)->str:
    d = df[cols].fillna("").astype(str)
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] +
                     ["| " + " | ".join(x.replace("|", "/") for x in r) + " |" for r in d.values])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for gpu_<device>.csv/.md/.json (default bench/results)")
    ap.add_argument("--only", default="", help="sections: mem,speed,mem2,cells (mem: the key memory rows; mem2: the others)")
    ap.add_argument("--rows", default="", help="only these row names (comma-separated)")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per speed row")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps per speed row")
    ap.add_argument("--budget-s", type=float, default=0, help="skip the remaining rows after this many seconds (0: no limit)")
    ap.add_argument("--cpu-smoke", action="store_true", help="run every section on CPU with a tiny shape (checks the logic)")
    ap.add_argument("--report", default="", help="a stored CSV: recompute its predictions with the current estimator and rewrite its .md")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.cpu_smoke: args.steps, args.warmup = 2, 1
    if args.report:
        p = Path(args.report); write_md(p, json.loads(p.with_suffix(".json").read_text()), p.with_suffix(".md"), recompute=True); return
    warnings.filterwarnings("ignore")
    run(args)

if __name__ == "__main__": main()
