"""SFT vs SFT + DPO, SmolLM2-135M-Instruct on SST-2 as a generative task (cpu profile): the DPO learning rate chosen on the
decontaminated validation split (seed 0), then three seeds evaluated once on the fixed 200-sentence dev subset.

    flock /tmp/ft_cpu.lock python bench/dpo_cpu.py      # cpu profile, about 90 minutes on 2 cores
    flock /tmp/ft_cpu.lock python bench/dpo_cpu.py --resume   # run only what dpo_cpu.csv lacks, reusing the SFT adapters

The learning-rate grid follows notebook 10c's rule: when a loss type's best rate is the edge of its grid, the grid is
extended by one step of 3 (`ft_course.seeds.edge_rates`), up to EXTEND_ROUNDS times. (The first run, of 2026-12-05, stopped
at 1e-4 and 3e-4, both losses choosing 3e-4: an edge. The extension was added after it; `--resume` ran only the new
candidates and, the choice having changed or not, the seeds of the chosen one. Every row stays in the csv.)

Writes bench/results/dpo_cpu.csv (one row per model x seed x evaluation set), dpo_cpu_logs.json (each DPO run's
log history) and dpo_cpu.md (tables + command). Everything comes from ft_course.evaluation (07a) and ft_course.dpo (07b):
the SFT recipe is 07a's (same rows, sizes, learning rate and seeds as bench/eval_sst2.py); DPO trains that SFT adapter
further on preference pairs of new training sentences (chosen = the true label, rejected = the other label).
"""
import os, sys, time, json, shutil, platform, warnings
from pathlib import Path

os.environ.setdefault("FT_PROFILE", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TQDM_DISABLE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ft_course.setup import get_profile, setup_env
import pandas as pd, torch, datasets, transformers
from transformers import AutoModelForCausalLM
from peft import PeftModel
from ft_course.evaluation import (sst2_splits, to_prompt_completion, load_chat_model, generate_answers, score_answers,
                                  completion_loss, lora_sft_trainer, mean_sd)
from ft_course.dpo import preference_pair, dpo_trainer, preference_accuracy, chosen_rows, dpo_rows
from ft_course.seeds import edge_rates

warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
datasets.disable_progress_bars(); transformers.utils.logging.disable_progress_bar()
COMMAND = "flock /tmp/ft_cpu.lock python bench/dpo_cpu.py"
# DPO candidates, compared on the validation split (seed 0), simplest first (the tie-break): plain DPO, and DPO plus the
# negative log-likelihood of the chosen answer (RPO, Pang et al. 2024: TRL's loss_type=["sigmoid", "sft"])
CANDIDATES = [dict(learning_rate=lr, loss_type=lt) for lt in (["sigmoid"], ["sigmoid", "sft"]) for lr in (1e-4, 3e-4)]
EXTEND_ROUNDS = 2   # at most two extensions of the grid (each one step of 3 beyond the edge)
SEEDS = (0, 1, 2)
OUT = ROOT/"bench"/"results"
RUNS = Path("/tmp/ft-course-runs/dpo_bench")


def evaluate(model, tok, rows, pairs, size):
    "Strict/lenient accuracy of greedy answers, answer loss, and preference accuracy/margin on `rows`"
    t0 = time.perf_counter()
    ans = generate_answers(model, tok, [p[0]["content"] for p in pairs["prompt"]], max_new_tokens=size["max_new_tokens"],
                           batch_size=size["batch_size"], max_length=size["max_length"])
    s, l = (score_answers(ans, rows["label"], parse=p) for p in ("strict", "lenient"))
    loss = completion_loss(model, tok, rows.map(to_prompt_completion, remove_columns=rows.column_names), max_length=size["max_length"])
    pref = preference_accuracy(model, tok, pairs)
    return dict(n=len(ans), strict=s["accuracy"], lenient=l["accuracy"], strict_invalid=s["invalid"], loss=loss["loss"],
                pref_accuracy=pref["accuracy"], pref_margin=pref["margin"], eval_s=time.perf_counter() - t0)


def sft(prof, tok, rows, size, seed):
    "07a's LoRA SFT for `seed`, saved; returns the adapter folder and the training seconds"
    folder = RUNS/f"sft_seed{seed}"
    if (folder/"adapter_model.safetensors").exists(): return folder, float("nan")
    trainer = lora_sft_trainer(AutoModelForCausalLM.from_pretrained(prof.causal_lm), tok,
                               rows.map(to_prompt_completion, remove_columns=rows.column_names), str(RUNS/"sft"), prof,
                               seed=seed, data_seed=seed, learning_rate=size["learning_rate"], max_steps=size["max_steps"],
                               per_device_train_batch_size=size["per_device_train_batch_size"], gradient_accumulation_steps=1,
                               max_length=size["max_length"], activation_checkpointing=False, logging_steps=5)
    t0 = time.perf_counter(); trainer.train(); train_s = time.perf_counter() - t0
    trainer.model.save_pretrained(folder)
    return folder, train_s


def load(prof, folder, trainable):
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(prof.causal_lm), folder, is_trainable=trainable)


def dpo(prof, tok, folder, pairs, cand, seed):
    trainer = dpo_trainer(load(prof, folder, True), tok, pairs, str(RUNS/"dpo"), prof, seed=seed, data_seed=seed, **cand)
    t0 = time.perf_counter(); trainer.train()
    return trainer.model.eval(), time.perf_counter() - t0, trainer.state.log_history


def main(resume=False, extra=()):
    setup_env()
    if not resume: shutil.rmtree(RUNS, ignore_errors=True)      # adapters of an earlier run are never reused, unless resuming
    prof = get_profile()
    size, dsize = prof.evaluation, prof.evaluation["dpo"]
    splits = sst2_splits(size["n_train"] + dsize["n_pairs"], size["n_val"], size["n_eval"], prof.source)
    sft_rows = splits["train"].select(range(size["n_train"]))
    pair_rows = splits["train"].select(range(size["n_train"], size["n_train"] + dsize["n_pairs"]))
    pairs = {k: ds.map(preference_pair, remove_columns=ds.column_names) for k, ds in
             dict(dpo=pair_rows, validation=splits["validation"], dev=splits["test"]).items()}
    evals = dict(validation=splits["validation"], dev=splits["test"])
    _, tok = load_chat_model(prof)
    csv, logs_path = OUT/"dpo_cpu.csv", OUT/"dpo_cpu_logs.json"
    rows = pd.read_csv(csv).to_dict("records") if resume else []
    logs = json.loads(logs_path.read_text()) if resume else {}
    t_all = time.perf_counter()
    def done(**where): return any(all(r.get(k) == v for k, v in where.items()) for r in rows)
    def add(model_name, seed, eval_set, r, **kw):
        rows.append(dict(model=model_name, seed=seed, eval_set=eval_set, **kw, **r))
        pd.DataFrame(rows).to_csv(csv, index=False)          # partial results survive a crash
        print(model_name, seed, eval_set, kw, {k: round(v, 3) for k, v in r.items() if isinstance(v, float)}, flush=True)

    # 1. the DPO learning rate and loss on the validation split, from the seed-0 SFT adapter; edges extend the grid
    folder, sft_s = sft(prof, tok, sft_rows, size, 0)
    if not done(model="sft", eval_set="validation"):
        add("sft", 0, "validation", evaluate(load(prof, folder, False), tok, evals["validation"], pairs["validation"], size), train_s=sft_s)
    cands = list(CANDIDATES)
    for round_ in range(EXTEND_ROUNDS + 1):
        for i, cand in enumerate(cands):
            name = "+".join(cand["loss_type"])
            if done(model="dpo", eval_set="validation", learning_rate=cand["learning_rate"], loss_type=name): continue
            model, s, hist = dpo(prof, tok, folder, pairs["dpo"], cand, 0)
            logs[f"select_{name}_lr{cand['learning_rate']:g}"] = hist
            add("dpo", 0, "validation", evaluate(model, tok, evals["validation"], pairs["validation"], size), candidate=i,
                learning_rate=cand["learning_rate"], loss_type=name, train_s=s)
        val = pd.DataFrame([r for r in rows if r["model"] == "dpo" and r["eval_set"] == "validation"])
        edges = edge_rates(val.rename(columns={"loss_type": "method", "strict": "selection_accuracy"}))
        new = [dict(learning_rate=lr, loss_type=lt.split("+")) for lt, lr in edges.items()
               if not ((val.loss_type == lt) & (val.learning_rate == lr)).any()]
        if not new or round_ == EXTEND_ROUNDS: break
        print("grid edge, extending:", new, flush=True)
        cands += new
    chosen, _ = chosen_rows(pd.DataFrame(rows))      # the notebook, the claims and the tests choose with the same function
    best = dict(learning_rate=chosen["learning_rate"], loss_type=chosen["loss_type"].split("+"))
    print("chosen", best, flush=True)

    # 2. three seeds: SFT, then DPO from that SFT adapter, each evaluated once on the dev subset; then any --extra
    #    configuration (exploratory: not chosen on validation, reported apart from the result)
    for seed, best in [(seed, best) for best in [best, *extra] for seed in SEEDS]:
        folder, sft_s = sft(prof, tok, sft_rows, size, seed)
        if not done(model="sft", seed=seed, eval_set="dev"):
            add("sft", seed, "dev", evaluate(load(prof, folder, False), tok, evals["dev"], pairs["dev"], size), train_s=sft_s)
        name = "+".join(best["loss_type"])
        if done(model="dpo", seed=seed, eval_set="dev", learning_rate=best["learning_rate"], loss_type=name): continue
        model, s, hist = dpo(prof, tok, folder, pairs["dpo"], best, seed)
        logs[f"seed{seed}_{name}_lr{best['learning_rate']:g}"] = hist
        add("dpo", seed, "dev", evaluate(model, tok, evals["dev"], pairs["dev"], size), learning_rate=best["learning_rate"],
            loss_type=name, train_s=s)
        logs_path.write_text(json.dumps(logs))
    write_md(pd.DataFrame(rows), chosen, time.perf_counter() - t_all, size, dsize, resume, extra)


def write_md(df, chosen, wall, size, dsize, resume, extra=()):
    best = dict(learning_rate=chosen["learning_rate"], loss_type=chosen["loss_type"].split("+"))
    _, dev = chosen_rows(df)
    cols = ["strict", "pref_accuracy", "pref_margin", "loss"]
    fmt = lambda m: {c: "{:.3f} ± {:.3f}".format(*mean_sd(dev[dev.model == m][c])) for c in cols}
    gain = {c: dev[dev.model == "dpo"][c].mean() - dev[dev.model == "sft"][c].mean() for c in cols}
    sd = {c: max(dev[dev.model == m][c].std() for m in ("sft", "dpo")) for c in cols}
    lines = [f"# SFT vs SFT + DPO, SmolLM2-135M-Instruct on SST-2 (cpu profile)", "",
             f"Command: `{COMMAND}{' --resume' if resume else ''}{''.join(f' --extra {e}' for e in EXTRA_ARGS)}` (from the repository root; {wall / 60:.0f} minutes on 2 CPU cores{', this resumed part' if resume else ''}, {platform.machine()}, "
             f"torch {torch.__version__}, transformers {transformers.__version__}).", "",
             f"Data: SFT on 07a's {size['n_train']} SST-2 training sentences ({size['max_steps']} steps of {size['per_device_train_batch_size']}, "
             f"learning rate {size['learning_rate']:g}, LoRA r=8 on all linear layers); DPO on {dsize['n_pairs']} other training "
             f"sentences as pairs (chosen = the true label word, rejected = the other one), {dsize['max_steps']} steps of "
             f"{dsize['per_device_train_batch_size']} pairs, beta 0.1, the SFT adapter trained further against a frozen copy of "
             f"itself. Held out: the {size['n_eval']}-sentence dev subset, evaluated once per model; the DPO learning rate and loss "
             f"(plain DPO, or DPO plus the chosen answer's NLL) were chosen on the {size['n_val']}-row validation split (seed 0).", "", "## Result (dev, 3 seeds, mean ± sd)", "",
             "| model | strict accuracy | preference accuracy | log-prob margin | answer loss |", "|---|---|---|---|---|"]
    for m, name in (("sft", "LoRA SFT"), ("dpo", f"LoRA SFT + DPO ({'+'.join(best['loss_type'])}, lr {best['learning_rate']:g})")):
        f = fmt(m); lines.append(f"| {name} | " + " | ".join(f[c] for c in cols) + " |")
    lines += ["", "Gain of DPO over SFT (mean of 3 seeds) and the larger of the two seed sds: " +
              "; ".join(f"{c} {gain[c]:+.3f} (sd {sd[c]:.3f})" for c in cols), "",
              *exploratory(df, extra),
              "## Learning rate and loss (validation split, seed 0)", "",
              df[df.eval_set == "validation"].drop(columns=["eval_set"]).round(4).to_markdown(index=False), "",
              "## Every run on the dev subset (rows of a configuration that is no longer the chosen one are kept)", "",
              df[df.eval_set == "dev"].round(4).to_markdown(index=False)]
    (OUT/"dpo_cpu.md").write_text("\n".join(lines) + "\n")


def exploratory(df, extra):
    "Markdown lines: each --extra configuration's dev rows as mean ± sd, marked as not chosen on validation"
    out = []
    for e in extra:
        name = "+".join(e["loss_type"])
        d = dpo_rows(df, e["learning_rate"], name).query("model == 'dpo'")
        if d.empty: continue
        out += [f"## Exploratory: {name}, lr {e['learning_rate']:g} (not chosen on validation; run after the result above was seen)", "",
                "| strict accuracy | preference accuracy | invalid answers | log-prob margin | answer loss |", "|---|---|---|---|---|",
                "| " + " | ".join("{:.3f} ± {:.3f}".format(*mean_sd(d[c])) for c in ["strict", "pref_accuracy", "strict_invalid", "pref_margin", "loss"]) + " |", ""]
    return out


EXTRA_ARGS = []

if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resume", action="store_true", help="keep bench/results/dpo_cpu.csv and the SFT adapters; run what is missing")
    p.add_argument("--extra", action="append", default=[], metavar="LOSS:LR",
                   help="also run this configuration for the three seeds on dev, e.g. sigmoid+sft:9e-4 (exploratory, reported apart)")
    a = p.parse_args()
    EXTRA_ARGS.extend(a.extra)
    main(a.resume, [dict(loss_type=e.split(":")[0].split("+"), learning_rate=float(e.split(":")[1])) for e in a.extra])
