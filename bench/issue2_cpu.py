"""Issue 2 on the `cpu` profile: full fine-tuning recipes, layer-wise LR decay, freezing, and the copied tutorial recipe.

Run from the repository root (about 13 minutes on 2 quiet cores):

    flock /tmp/ft_cpu.lock python bench/issue2_cpu.py > /tmp/issue2_cpu.log 2>&1

Pretrained all-MiniLM-L6-v2 (`minilm_path()`), SST-2 from shared/data, full dev set (872), seed 42, fp32, AdamW,
linear schedule, weight decay 0.01. Each configuration runs in a fresh subprocess so its peak RSS is its own.
Training runs without in-loop evaluation; dev accuracy is measured once afterwards (dynamic padding, batch 64).
`--only NAME [NAME ...]` reruns some configurations (their rows are replaced in the CSV).
Writes bench/results/issue2_cpu.csv and bench/results/issue2_cpu.md; the last column is the machine's 1-minute load
average at the end of the run: on 2 cores, anything above 2 means other work shared the CPU and the times are inflated.
"""
import csv, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve()   # the fresh processes load this script by its path: any cwd works
ROOT = HERE.parents[1]
RESULTS = ROOT/"bench"/"results"
CMD = "flock /tmp/ft_cpu.lock python bench/issue2_cpu.py > /tmp/issue2_cpu.log 2>&1"
SEED = 42

CONFIGS = [  # in order of priority: results are written after each one
    dict(name="full FT, course recipe", method="full", n_train=2000, epochs=1, lr=5e-5),
    dict(name="LLRD 0.9, head lr 1e-4", method="llrd", n_train=2000, epochs=1, lr=1e-4, decay=0.9),
    dict(name="freeze embeddings + layers 0-2, lr 1e-4", method="freeze", n_train=2000, epochs=1, lr=1e-4, n_frozen=3),
    dict(name="full FT, lr 1e-4", method="full", n_train=2000, epochs=1, lr=1e-4),
    dict(name="tutorial: pad 512, batch 8, warmup_steps=500, 20 steps", method="tutorial", n_train=2000, lr=5e-5,
         max_steps=20),
    dict(name="LLRD 0.9, head lr 5e-5", method="llrd", n_train=2000, epochs=1, lr=5e-5, decay=0.9),
    dict(name="full FT, lr 1e-4, 4,000 rows", method="full", n_train=4000, epochs=1, lr=1e-4),
]

def run_one(**cfg)->dict:
    "Train one configuration (a `CONFIGS` entry) in this process and return its measurements"
    import torch
    from ft_course.setup import get_profile, setup_env
    from ft_course.data import load_sentiment, tokenize
    from ft_course.train import load_classifier, make_training_args, make_trainer, count_parameters
    from ft_course.measure import peak_memory_mb
    from ft_course.llrd import LLRDConfig, llrd_optimizer, freeze_lower_layers
    setup_env(SEED, offline=True)
    torch.set_num_threads(2)
    prof = get_profile("cpu")
    model, tok = load_classifier(prof)
    raw = load_sentiment("sst2", "local", n_train=cfg["n_train"], n_eval=None, seed=SEED)
    kw, trainer_kw = {}, {}
    if cfg["method"] == "tutorial":      # the copied recipe: static padding to 512, batch 8, 500 warmup steps
        train = raw["train"].map(lambda b: tok(b["text"], truncation=True, max_length=512, padding="max_length"),
                                 batched=True, remove_columns=["text"])
        data = {"train": train, "validation": tokenize(raw["validation"], tok, 512)}
        kw = dict(per_device_train_batch_size=8, warmup_steps=500, max_steps=cfg["max_steps"], logging_steps=5)
    else:
        data = tokenize(raw, tok, prof.max_length)
        kw = dict(num_train_epochs=cfg["epochs"], logging_steps=10)
    if cfg["method"] == "llrd":
        trainer_kw["optimizers"] = (llrd_optimizer(model, LLRDConfig(cfg["lr"], cfg["decay"], 0.01)), None)
    if cfg["method"] == "freeze": freeze_lower_layers(model, cfg["n_frozen"])
    trainable, total = count_parameters(model)
    args = make_training_args(f"/tmp/ft-course-runs/issue2/{cfg['method']}", prof, learning_rate=cfg["lr"], eval_strategy="no",
                              disable_tqdm=True, **kw)
    trainer = make_trainer(model, args, data, tok, **trainer_kw)
    out = trainer.train()
    steps, secs = out.global_step, out.metrics["train_runtime"]
    logs = [r for r in trainer.state.log_history if "loss" in r]
    ev = trainer.evaluate()
    return dict(name=cfg["name"], trainable_params=trainable, total_params=total, steps=steps,
                examples=steps * args.per_device_train_batch_size * args.gradient_accumulation_steps,
                train_s=round(secs, 1), ms_per_step=round(1000 * secs / steps),
                examples_per_s=round(steps * args.per_device_train_batch_size / secs, 2),
                peak_lr_logged=max((r["learning_rate"] for r in logs), default=float("nan")),
                last_loss=round(logs[-1]["loss"] if logs else out.training_loss, 3),
                peak_rss_mb=round(peak_memory_mb()), dev_accuracy=round(ev["eval_accuracy"], 4),
                load_avg_1m=round(__import__("os").getloadavg()[0], 1))

FIELDS = ["name", "trainable_params", "total_params", "steps", "examples", "train_s", "ms_per_step", "examples_per_s",
          "peak_lr_logged", "last_loss", "peak_rss_mb", "dev_accuracy", "load_avg_1m"]

def write(rows):
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS/"issue2_cpu.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS); w.writeheader(); w.writerows(rows)
    lines = [f"# Issue 2 on the cpu profile (MiniLM, SST-2)", "", "Command (from the repository root):", "",
             f"    {CMD}", "", __doc__.split("\n\n")[3].strip(), "",
             "| recipe | trainable params | steps | train time | time/step | examples/s | peak RSS | last train loss | dev accuracy | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['trainable_params']/1e6:.1f} M / {r['total_params']/1e6:.1f} M | {r['steps']} | "
                     f"{r['train_s']:.0f} s | {r['ms_per_step']} ms | {r['examples_per_s']} | {r['peak_rss_mb']/1000:.2f} GB | "
                     f"{r['last_loss']} | {100*r['dev_accuracy']:.1f}% | {r['load_avg_1m']} |")
    (RESULTS/"issue2_cpu.md").write_text("\n".join(lines) + "\n")

def main(only=None):
    from ft_course.measure import run_in_fresh_process
    path, rows = RESULTS/"issue2_cpu.csv", []
    if only and path.exists(): rows = [r for r in csv.DictReader(open(path)) if r["name"] not in only]
    for r in rows:
        for k in FIELDS[1:]: r[k] = int(r[k]) if r[k].lstrip("-").isdigit() else float(r[k])
    for cfg in CONFIGS:
        if only and cfg["name"] not in only: continue
        t0 = time.time()
        log = Path(tempfile.gettempdir())/f"issue2_cpu-{CONFIGS.index(cfg)}.log"   # the child's stderr
        try: r = run_in_fresh_process(f"{HERE}:run_one", cfg, log=log)   # a fresh process: its peak RSS is its own
        except RuntimeError as e: print(log.read_text()[-3000:], e, flush=True); continue
        print(f"{time.time()-t0:.0f} s wall:", r, flush=True)
        rows.append(r)
        rows.sort(key=lambda r: [c["name"] for c in CONFIGS].index(r["name"]))
        write(rows)

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--only": main(sys.argv[2:])
    else: main()
