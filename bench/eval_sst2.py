"""Base vs LoRA-SFT SmolLM2-135M-Instruct on SST-2 as a generative task: learning rate chosen on a decontaminated
validation split, three seeds on a fixed 200-sentence dev subset, the prompt-format variants, and a contaminated run.

    cd /work/wt12 && flock /tmp/ft_cpu.lock python bench/eval_sst2.py     # cpu profile, about 30 minutes on 2 cores

Writes bench/results/eval_sst2.csv (one row per model x evaluation) and bench/results/eval_sst2.md (tables + command).
Everything (splits, sizes, prompts, parsers, loss, the trainer) comes from ft_course.evaluation (nbs/07a_evaluation.ipynb).
"""
import os, sys, time, warnings, shutil, platform
from pathlib import Path

os.environ.setdefault("FT_PROFILE", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ft_course.setup import get_profile, setup_env      # first: it quiets bitsandbytes' CPU-kernel notice
import pandas as pd, torch, datasets, transformers
from datasets import concatenate_datasets
from transformers import AutoModelForCausalLM
from peft import PeftModel
from ft_course.evaluation import (PARSERS, sst2_splits, to_prompt_completion, sentiment_prompt, load_chat_model,
                                  generate_answers, score_answers, completion_loss, lora_sft_trainer, mean_sd,
                                  contamination_report)

warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
datasets.disable_progress_bars(); transformers.utils.logging.disable_progress_bar()
COMMAND = "flock /tmp/ft_cpu.lock python bench/eval_sst2.py"
LEARNING_RATES = (3e-4, 1e-3)      # candidates, compared on the validation split
SEEDS = (0, 1, 2)
FORMATS = {"one_word": True, "question": True, "one_word_raw": False}   # prompt template, chat template?
OUT = ROOT/"bench"/"results"


def evaluate(model, tok, ds, size, formats=("one_word",)):
    "Rows of scores (both parsers) and the completion loss of `model` on `ds`, one per prompt format"
    gold, rows = ds["label"], []
    loss = completion_loss(model, tok, ds.map(to_prompt_completion, remove_columns=ds.column_names), max_length=size["max_length"])
    for f in formats:
        template, chat = f.removesuffix("_raw"), FORMATS[f]
        t0 = time.perf_counter()
        ans = generate_answers(model, tok, [sentiment_prompt(t, template) for t in ds["text"]], chat=chat,
                               max_new_tokens=size["max_new_tokens"], batch_size=size["batch_size"], max_length=size["max_length"])
        s, l = (score_answers(ans, gold, parse=p) for p in PARSERS)
        rows.append(dict(prompt=template, chat=chat, n=len(ans), strict=s["accuracy"], lenient=l["accuracy"],
                         strict_invalid=s["invalid"], lenient_invalid=l["invalid"], empty=s["empty"],
                         loss=loss["loss"] if f == "one_word" else float("nan"), gen_s=time.perf_counter() - t0,
                         first_answer=ans[0][:50]))
    return rows


def train(prof, tok, train_ds, size, lr, seed):
    pairs = train_ds.map(to_prompt_completion, remove_columns=train_ds.column_names)
    trainer = lora_sft_trainer(AutoModelForCausalLM.from_pretrained(prof.causal_lm), tok, pairs, "/tmp/ft-course-runs/eval_bench",
                               prof, seed=seed, data_seed=seed, learning_rate=lr, max_steps=size["max_steps"],
                               per_device_train_batch_size=size["per_device_train_batch_size"], gradient_accumulation_steps=1,
                               max_length=size["max_length"], activation_checkpointing=False, logging_steps=5)
    t0 = time.perf_counter(); out = trainer.train()
    return trainer.model.eval(), dict(train_s=time.perf_counter() - t0, steps=out.global_step, train_loss=out.training_loss)


def main():
    setup_env()
    prof = get_profile()
    size = prof.evaluation
    splits = sst2_splits(size["n_train"], size["n_val"], size["n_eval"], prof.source)
    test = splits["test"]
    rows, t_all = [], time.perf_counter()
    def add(model_name, eval_set, new, **kw):
        for r in new: rows.append(dict(model=model_name, eval_set=eval_set, **kw, **r))
        pd.DataFrame(rows).to_csv(OUT/"eval_sst2.csv", index=False)          # partial results survive a crash
        print(model_name, eval_set, kw, [(r["prompt"], r["chat"], round(r["strict"], 3), round(r["lenient"], 3)) for r in new], flush=True)

    base, tok = load_chat_model(prof)
    add("base", "validation", evaluate(base, tok, splits["validation"], size))
    add("base", "dev", evaluate(base, tok, test, size, FORMATS))
    del base

    # 1. learning rate on the decontaminated validation split (seed 0); adapters kept to evaluate the chosen one on dev
    adapters = {}
    for lr in LEARNING_RATES:
        model, info = train(prof, tok, splits["train"], size, lr, 0)
        add("lora", "validation", evaluate(model, tok, splits["validation"], size), seed=0, learning_rate=lr, **info)
        adapters[lr] = (Path(f"/tmp/ft-course-runs/eval_bench_lr{lr:g}"), info)
        model.save_pretrained(adapters[lr][0])
        del model
    val = pd.DataFrame([r for r in rows if r["model"] == "lora" and r["eval_set"] == "validation"])
    best = val.sort_values(["strict", "loss"], ascending=[False, True]).iloc[0]["learning_rate"]
    print("chosen learning rate", best, flush=True)

    # 2. three seeds at the chosen rate, on the dev subset (seed 0 reuses the adapter trained above)
    for seed in SEEDS:
        if seed == 0:
            path, info = adapters[best]
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(prof.causal_lm), path).eval()
        else: model, info = train(prof, tok, splits["train"], size, best, seed)
        add("lora", "dev", evaluate(model, tok, test, size, FORMATS), seed=seed, learning_rate=best, **info)
        del model

    # 3. contamination: 100 of the training rows replaced by 100 dev rows (with labels); score seen and unseen halves
    half = size["n_eval"] // 2
    seen, unseen = test.select(range(half)), test.select(range(half, len(test)))
    mixed = concatenate_datasets([splits["train"].select(range(len(splits["train"]) - half)), seen]).shuffle(seed=0)
    model, info = train(prof, tok, mixed, size, best, 0)
    for name, part in (("dev_seen", seen), ("dev_unseen", unseen)):
        flagged = contamination_report(mixed["text"], part["text"])["flagged"]
        add("contaminated", name, evaluate(model, tok, part, size), seed=0, learning_rate=best, flagged=flagged, **info)
    for p, _ in adapters.values(): shutil.rmtree(p, ignore_errors=True)
    write_md(pd.DataFrame(rows), prof, size, best, time.perf_counter() - t_all)


def write_md(df, prof, size, best, total_s):
    dev = df[df.eval_set == "dev"]
    main = dev[(dev.prompt == "one_word") & dev.chat]
    b, ft = main[main.model == "base"].iloc[0], main[main.model == "lora"]
    ms = lambda v: f"{mean_sd(v)[0]:.3f} ± {mean_sd(v)[1]:.3f}"
    def fmt(d):
        d = d.copy()
        for c in ("learning_rate", "seed", "flagged", "steps"):
            if c in d: d[c] = d[c].map(lambda v: "" if pd.isna(v) else f"{v:g}")
        if "first_answer" in d: d["first_answer"] = d["first_answer"].map(lambda a: repr(a).replace("|", "/"))
        for c in d.columns:
            if d[c].dtype.kind == "f": d[c] = d[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        return d.to_markdown(index=False, disable_numparse=True)
    lines = [
        "# SST-2 as a generative task: base vs LoRA SFT, SmolLM2-135M-Instruct (cpu profile)", "",
        f"Command: `{COMMAND}` (from the repository root; {total_s/60:.0f} minutes on {os.cpu_count()} CPU cores, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, transformers {transformers.__version__}).", "",
        f"Data: {size['n_train']} SST-2 training sentences of 8+ words (sharing no 8-gram with the validation rows), "
        f"{size['n_val']} validation rows carved from SST-2 train (for the learning rate), and a fixed random subset of "
        f"{size['n_eval']} of the 872 dev sentences (seed 0), evaluated once per model. LoRA r=8, alpha 16, all linear layers; "
        f"{size['max_steps']} steps of {size['per_device_train_batch_size']} (one epoch), 10% warmup, cosine; "
        f"greedy decoding, max_new_tokens={size['max_new_tokens']}. Accuracy counts invalid answers as wrong. "
        "Loss: mean cross-entropy per answer token (prompt masked as in SFT).", "",
        "## Result", "",
        "| model | strict accuracy | lenient accuracy | strict invalid | held-out loss |", "|---|---|---|---|---|",
        f"| base | {b.strict:.3f} | {b.lenient:.3f} | {b.strict_invalid:.0f} | {b.loss:.3f} |",
        f"| LoRA SFT, {len(ft)} seeds (mean ± sd) | {ms(ft.strict)} | {ms(ft.lenient)} | {ms(ft.strict_invalid)} | {ms(ft.loss)} |", "",
        f"Gain in strict accuracy: {mean_sd(ft.strict)[0] - b.strict:.3f}, seed sd {mean_sd(ft.strict)[1]:.3f}.", "",
        f"## Learning rate (validation split, seed 0): chosen {best:g}", "",
        fmt(df[df.eval_set == "validation"][["model", "learning_rate", "strict", "lenient", "strict_invalid", "loss", "train_s"]]), "",
        "## Prompt format (dev subset)", "",
        fmt(dev[["model", "seed", "prompt", "chat", "strict", "lenient", "strict_invalid", "empty", "first_answer"]]), "",
        f"## Contamination: {size['n_eval'] // 2} of the {size['n_train']} training rows replaced by {size['n_eval'] // 2} "
        "dev sentences with their labels (seed 0); `flagged`: dev sentences the 8-gram check flags", "",
        fmt(df[df.model == "contaminated"][["eval_set", "n", "flagged", "strict", "lenient", "loss"]]), "",
        "## All rows", "", fmt(df.drop(columns=["first_answer"])), ""]
    (OUT/"eval_sst2.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
