"""QLoRA on the `cpu` profile (MiniLM, SST-2): weight memory fp32/bf16/NF4, QLoRA vs LoRA-on-fp32 training, merge precision.

Usage (from the repository root, under the shared CPU lock so timings are not polluted):
    flock /tmp/ft_cpu.lock python bench/qlora_cpu.py > /tmp/qlora_cpu.log 2>&1 &
    python bench/qlora_cpu.py --only memory,qlora_fp32   # a subset
Each configuration runs in a fresh subprocess (peak RSS is a process high-water mark).
Writes bench/results/qlora_cpu.csv and bench/results/qlora_cpu.md.
"""
from __future__ import annotations
import argparse, dataclasses, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve()   # the fresh processes load this script by its path: any cwd works
RES = HERE.parent/"results"
CMD = "flock /tmp/ft_cpu.lock python bench/qlora_cpu.py"
# name: (4-bit?, bnb_4bit_compute_dtype)
CONFIGS = {"lora_fp32": (False, None), "qlora_fp32": (True, "float32"), "qlora_bf16": (True, "bfloat16")}
DEFAULT = ["memory", "lora_fp32", "qlora_fp32", "qlora_bf16"]

def _setup(n_train=2000):
    import torch
    from ft_course.setup import get_profile, setup_env
    setup_env(42); torch.set_num_threads(2)
    return dataclasses.replace(get_profile("cpu"), n_train=n_train, num_train_epochs=1, learning_rate=1e-3)

def run_memory()->dict:
    "Weight memory of MiniLM in float32, bfloat16 and NF4 via get_memory_footprint"
    from ft_course.qlora import weight_memory_mb
    prof = _setup()
    return {"config": "memory", **{f"weights_{k}_mb": round(v, 2) for k, v in weight_memory_mb(prof.classifier, task="seq_cls").items()}}

def run_train(name:str)->dict:
    "LoRA r=8 on query/value, classifier+pooler trainable, 1 epoch on 2,000 rows; on a 4-bit or a float32 base"
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer
    from ft_course.data import load_profile_data, tokenize
    from ft_course.train import load_classifier, make_training_args, make_trainer, count_parameters
    from ft_course.measure import peak_memory_mb
    from ft_course.qlora import load_4bit, merge_errors
    four_bit, cdt = CONFIGS[name]
    prof = _setup()
    if four_bit:
        tok = AutoTokenizer.from_pretrained(prof.classifier)
        model = load_4bit(prof.classifier, compute_dtype=cdt, task="seq_cls")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else: model, tok = load_classifier(prof)
    weights_mb = model.get_memory_footprint() / 2**20
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    cfg = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"],
                     modules_to_save=["classifier", "pooler"])
    model = get_peft_model(model, cfg)
    trainable, total = count_parameters(model)
    with tempfile.TemporaryDirectory() as d:
        args = make_training_args(d, prof, eval_strategy="no", disable_tqdm=True, logging_steps=20)
        trainer = make_trainer(model, args, data, tok)
        t0 = time.perf_counter(); out = trainer.train(); train_s = time.perf_counter() - t0
        t0 = time.perf_counter(); ev = trainer.evaluate(); eval_s = time.perf_counter() - t0
        peak = peak_memory_mb()
        row = dict(config=name, base="NF4 + double quant" if four_bit else "float32", compute_dtype=cdt or "float32",
                   trainable=trainable, total_stored=total, weights_mb=round(weights_mb, 1), steps=out.global_step,
                   train_s=round(train_s, 1), ms_per_step=round(1000*train_s/out.global_step), eval_s=round(eval_s, 1),
                   peak_rss_mb=round(peak), train_loss=round(out.training_loss, 4), dev_accuracy=round(ev["eval_accuracy"], 4))
        if name == "qlora_fp32":        # merge precision, on the first 64 dev sentences
            model.save_pretrained(f"{d}/adapter")
            dev = load_profile_data(prof)["validation"][:64]["text"]
            batch = dict(tok(dev, padding=True, truncation=True, max_length=prof.max_length, return_tensors="pt"))
            row |= {f"merge_{k.replace(' ', '_')}": v for k, v in merge_errors(prof.classifier, f"{d}/adapter", batch, task="seq_cls").items()}
    return row

def run_one(name:str)->dict:
    "One configuration of `DEFAULT` ('memory' or a `CONFIGS` name) in this process"
    return run_memory() if name == "memory" else run_train(name)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    a = ap.parse_args()
    from ft_course.measure import run_in_fresh_process
    names = a.only.split(",") if a.only else DEFAULT
    rows = []
    for n in names:
        t0 = time.perf_counter()
        log = Path(tempfile.gettempdir())/f"qlora_cpu-{n}.log"                # the child's stderr
        try: rows.append(run_in_fresh_process(f"{HERE}:run_one", dict(name=n), log=log))   # a fresh process: its own peak RSS
        except RuntimeError as e: print(log.read_text()[-3000:], e); raise SystemExit(f"{n} failed")
        print(n, rows[-1], f"({time.perf_counter()-t0:.0f} s)", flush=True)
    import pandas as pd
    RES.mkdir(exist_ok=True)
    mem = [r for r in rows if r["config"] == "memory"]
    tr = pd.DataFrame([r for r in rows if r["config"] != "memory"])
    tr.to_csv(RES/"qlora_cpu.csv", index=False)
    lines = [f"Command: `{CMD}` (each configuration in a fresh process; 2 CPU cores shared with other work, so times are indicative).",
             "", "MiniLM (all-MiniLM-L6-v2, 22.7M parameters), SST-2: 2,000 training rows, 1 epoch, batch 32, lr 1e-3, 10% warmup, "
             "max_length 128, full dev set (872). LoRA r=8, alpha 16, dropout 0.1 on query/value; classifier and pooler trained in full "
             "(`modules_to_save`). 4-bit: NF4 + double quantisation, classifier and pooler kept in float32, `guard_cpu_4bit` applied.", ""]
    if mem:
        m = mem[0]
        lines += ["**Weight memory** (`get_memory_footprint`; NF4 quantises the encoder's linear layers only)", "",
                  "| float32 | bfloat16 | NF4, rest float32 | NF4, rest bfloat16 |", "|---|---|---|---|",
                  f"| {m['weights_float32_mb']:.1f} MB | {m['weights_bfloat16_mb']:.1f} MB | {m['weights_nf4_mb']:.1f} MB | {m['weights_nf4_bf16_mb']:.1f} MB |", ""]
    if len(tr):
        cols = ["config", "base", "compute_dtype", "trainable", "weights_mb", "steps", "ms_per_step", "peak_rss_mb", "train_loss", "dev_accuracy"]
        lines += ["**Training** (one epoch)", "", tr[cols].to_markdown(index=False), ""]
        mcols = [c for c in tr.columns if c.startswith("merge_")]
        if mcols:
            r = tr[tr.config == "qlora_fp32"].iloc[0]
            lines += ["**Merging the QLoRA adapter** (max |logit difference| from the unmerged 4-bit adapter model, 64 dev sentences)", "",
                      "| " + " | ".join(c[6:].replace("_", " ") for c in mcols) + " |", "|" + "---|" * len(mcols),
                      "| " + " | ".join(f"{r[c]:.2e}" for c in mcols) + " |", ""]
    (RES/"qlora_cpu.md").write_text("\n".join(lines))
    print("\n".join(lines))

if __name__ == "__main__": main()
