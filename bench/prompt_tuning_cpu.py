"""Prompt tuning on the `cpu` profile (pretrained all-MiniLM-L6-v2, 2,000 SST-2 train rows, full dev set of 872).

Run from the repository root (takes about 8 minutes on 2 idle cores, much longer on a busy machine):

    flock /tmp/ft_cpu.lock python bench/prompt_tuning_cpu.py > /tmp/prompt_tuning_cpu.log 2>&1

Each configuration runs in a fresh subprocess (peak RSS is a process high-water mark), same seed (42), same data,
dynamic padding, max_length 128, batch 32, 10% warmup, linear decay, weight decay 0.01, fp32.
Writes bench/results/prompt_tuning_cpu.csv and bench/results/prompt_tuning_cpu.md.
"""
import json, os, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve()   # the fresh processes load this script by its path: any cwd works
ROOT = HERE.parents[1]
RESULTS = ROOT/"bench"/"results"
CMD = "flock /tmp/ft_cpu.lock python bench/prompt_tuning_cpu.py > /tmp/prompt_tuning_cpu.log 2>&1"
N_TRAIN, NUM_VIRTUAL_TOKENS, SEED = 2000, 20, 42
INIT_TEXT = "Classify if the sentiment of this movie review is positive or negative"
FULL_FT = dict(name="full FT (reference, issue 2)", accuracy_1ep=0.780, seconds_1ep=53, peak_rss_mb=1600)

def run_one(**cfg)->dict:
    "Train one configuration (name, lr, epochs, init, pooler) in this process and return its measurements"
    import warnings; warnings.filterwarnings("ignore")
    import torch
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import TrainerCallback
    from ft_course.setup import get_profile, setup_env
    from ft_course.data import load_sentiment, tokenize
    from ft_course.train import load_classifier, make_training_args, make_trainer, count_parameters
    from ft_course.measure import peak_memory_mb
    setup_env(SEED)
    torch.set_num_threads(2)
    prof = get_profile("cpu")
    model, tok = load_classifier(prof)
    init = PromptTuningInit[cfg["init"]]
    pcfg = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=NUM_VIRTUAL_TOKENS, prompt_tuning_init=init,
                              prompt_tuning_init_text=INIT_TEXT if init == PromptTuningInit.TEXT else None,
                              tokenizer_name_or_path=prof.classifier if init == PromptTuningInit.TEXT else None,
                              modules_to_save=["pooler"] if cfg["pooler"] else None)
    model = get_peft_model(model, pcfg)
    trainable, total = count_parameters(model)
    data = tokenize(load_sentiment("sst2", "local", n_train=N_TRAIN, n_eval=None, seed=SEED), tok, prof.max_length)

    class StepTimer(TrainerCallback):
        "Wall time spent in training steps only (evaluation excluded)"
        def __init__(self): self.t, self.cpu, self.n = 0.0, 0.0, 0
        def on_step_begin(self, args, state, control, **kw): self.t0, self.c0 = time.perf_counter(), time.process_time()
        def on_step_end(self, args, state, control, **kw):
            self.t += time.perf_counter() - self.t0; self.cpu += time.process_time() - self.c0; self.n += 1
    timer = StepTimer()
    args = make_training_args(f"/tmp/ft-course-runs/bench_pt/{cfg['name']}", prof, learning_rate=cfg["lr"],
                              num_train_epochs=cfg["epochs"], disable_tqdm=True, logging_steps=20)
    trainer = make_trainer(model, args, data, tok, callbacks=[timer])
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    accs = [r["eval_accuracy"] for r in trainer.state.log_history if "eval_accuracy" in r]
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return dict(cfg, trainable=trainable, total=total, trainable_pct=100*trainable/total, steps=timer.n,
                ms_per_step=1000*timer.t/max(timer.n, 1), cpu_ms_per_step=1000*timer.cpu/max(timer.n, 1), train_seconds=round(timer.t, 1), wall_seconds=round(wall, 1),
                peak_rss_mb=peak_memory_mb(),   # the whole process's peak RSS (nothing resets it)
                loadavg_1min=os.getloadavg()[0], accuracy=accs[-1], accuracy_by_epoch=accs, first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None)

def spawn(cfg:dict)->dict:
    "Run `cfg` in a fresh Python process"
    from ft_course.measure import run_in_fresh_process
    log = Path(tempfile.gettempdir())/"prompt_tuning_cpu-run.log"          # the child's stderr
    try: res = run_in_fresh_process(f"{HERE}:run_one", cfg, log=log)
    except RuntimeError as e: sys.exit(f"{cfg['name']} failed:\n{log.read_text()[-3000:]}\n{e}")
    print(json.dumps(res), flush=True)
    with open(RESULTS/"prompt_tuning_cpu.jsonl", "a") as f: f.write(json.dumps(res) + "\n")
    return res

def write(rows:list[dict]):
    "Write the CSV and the markdown table (after every run, so partial results survive)"
    import pandas as pd
    df = pd.DataFrame(rows)
    df["accuracy_by_epoch"] = df["accuracy_by_epoch"].map(lambda a: " ".join(f"{x:.4f}" for x in a))
    df.to_csv(RESULTS/"prompt_tuning_cpu.csv", index=False)
    cols = ["name", "lr", "epochs", "init", "pooler", "trainable", "trainable_pct", "ms_per_step", "cpu_ms_per_step",
            "train_seconds", "loadavg_1min", "peak_rss_mb", "accuracy", "accuracy_by_epoch"]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    md = "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|"*len(cols)] +
                   ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in df.to_dict("records")])
    ref = (f"Full fine-tuning reference (same data, 1 epoch, lr 5e-5, measured earlier): {FULL_FT['accuracy_1ep']:.1%} dev "
           f"accuracy, {FULL_FT['seconds_1ep']} s, {FULL_FT['peak_rss_mb']} MB peak RSS, 22.7M trainable parameters (100%).")
    (RESULTS/"prompt_tuning_cpu.md").write_text(
        f"# Prompt tuning on the cpu profile\n\nCommand (from the repository root):\n\n    {CMD}\n\n"
        f"MiniLM (all-MiniLM-L6-v2) + peft 0.21.2 `PromptTuningConfig(task_type=SEQ_CLS, num_virtual_tokens=20, "
        f"prompt_tuning_init=TEXT)`, {N_TRAIN} SST-2 train rows, full dev set (872), seed {SEED}, batch 32, max_length 128, "
        f"10% warmup, linear decay, weight decay 0.01, fp32, 2 CPU threads, a fresh process per row. `pooler=True` adds "
        f"`modules_to_save=['pooler']` (peft already trains a copy of the classifier head). ms_per_step counts training "
        f"steps only (evaluation excluded), in wall-clock time; cpu_ms_per_step is the process's CPU time (all threads) in "
        f"those steps, which other processes on a shared machine disturb less; loadavg_1min is the machine's load at the "
        f"end of the run (2 cores: above 2, other processes were running and wall times are inflated).\n\n{md}\n\n{ref}\n")

def main():
    rows = []
    for lr in (3e-3, 3e-2, 3e-1):   # the sweep: 1 epoch each, TEXT init, classifier head trainable (peft's default)
        rows.append(spawn(dict(name=f"sweep lr={lr:g}", lr=lr, epochs=1, init="TEXT", pooler=False))); write(rows)
    best = max(rows, key=lambda r: r["accuracy"])["lr"]
    rows.append(spawn(dict(name=f"+ pooler lr={best:g}", lr=best, epochs=1, init="TEXT", pooler=True))); write(rows)
    rows.append(spawn(dict(name=f"best lr={best:g}, 3 epochs", lr=best, epochs=3, init="TEXT", pooler=False))); write(rows)
    print((RESULTS/"prompt_tuning_cpu.md").read_text())

if __name__ == "__main__": main()
