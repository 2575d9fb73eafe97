"""Numbers in prose, tied to the stored runs they come from.

    python docs/claims.py            # list every marked number whose text differs from its source (exit 1 if any)
    python docs/claims.py --write    # rewrite those numbers from their sources (after a rerun of a benchmark)
    python docs/claims.py --unmarked # numbers with a unit and no marker: specifications, or claims still to tie

A measured number in the markdown of a notebook (or of docs/README_dev.md; README.md is generated from both) is followed
by an HTML comment naming where it comes from, e.g. `14.5×<!--claim:naive_throughput_ratio-->`. Jupyter, Colab and
the website do not show the comment. `CLAIMS` maps each name to a function that reads the value from its stored
source (a bench CSV, the summary of a comparison run, a notebook's stored output) and formats it as the prose writes
it. tests/test_claims.py fails when the text in front of a marker differs from what its source says now, when a
marker names no claim, and when a claim is used nowhere: a rerun that moves a number, or an edit of the prose, shows
up as a failing test instead of as drift.
"""
from __future__ import annotations
import csv, functools, json, re, sys
import numpy as np
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"(?P<text>[^\s|]+?)(?P<mark><!--claim:(?P<key>[\w.-]+)-->)")
TRIM = "*_`("   # bold, italics, code and an opening parenthesis around a number are not part of it


# --- sources ---------------------------------------------------------------------------------------------------------
@functools.cache
def rows(path:str)->list[dict]:
    "The rows of a CSV under the repository root"
    if not (ROOT/path).exists(): raise LookupError(f"{path} is missing: run the command that writes it")
    with open(ROOT/path, newline="") as f: return list(csv.DictReader(f))

def row(path:str, **where)->dict:
    "The one row of `path` whose columns equal `where` (e.g. `method='lora'`)"
    hits = [r for r in rows(path) if all(r[k] == v for k, v in where.items())]
    if len(hits) != 1: raise LookupError(f"{path}: {len(hits)} rows match {where}")
    return hits[0]

def summary(path:str)->dict:
    "The `Summary:` JSON of a comparison run's compare.md"
    m = re.search(r"^Summary: `(\{.*\})`$", (ROOT/path).read_text(), re.M)
    if not m: raise LookupError(f"{path} has no Summary line")
    return json.loads(m.group(1))

@functools.cache
def outputs(stem:str)->str:
    "All the stored text outputs of nbs/<stem>.ipynb, one string"
    nb = json.loads((ROOT/"nbs"/f"{stem}.ipynb").read_text())
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb["cells"] for o in c.get("outputs", []))

def groups(stem:str, pattern:str)->tuple:
    "All groups of the first match of `pattern` in the stored outputs of nbs/<stem>.ipynb"
    m = re.search(pattern, outputs(stem))
    if not m: raise LookupError(f"nbs/{stem}.ipynb: no stored output matches {pattern!r}: re-store it")
    return m.groups()

def output(stem:str, pattern:str)->str:
    "Group 1 of the first match of `pattern` in the stored outputs of nbs/<stem>.ipynb"
    return groups(stem, pattern)[0]

def span(values, fmt:str)->str:
    "`fmt % (min, max)` of `values`, e.g. a load-average range '2.1-3.6'"
    values = list(values)
    return fmt % (min(values), max(values))

def sci(x)->str:
    "A learning rate as code writes it: 0.00015 -> '1.5e-4', 0.03 -> '3e-2'"
    m, e = f"{float(x):.1e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"
def pct(x, nd:int=1)->str: return f"{100 * float(x):.{nd}f}%"
def times(x, nd:int=1)->str: return f"{float(x):.{nd}f}×"


# --- the claims --------------------------------------------------------------------------------------------------------
CMP, LORA, PT = "bench/results/compare_cpu/compare.csv", "bench/results/lora_cpu.csv", "bench/results/prompt_tuning_cpu.csv"
TUTORIAL, FREEZE, LLRD = "tutorial: pad 512, batch 8, warmup_steps=500, 20 steps", "freeze embeddings + layers 0-2, lr 1e-4", "LLRD 0.9, head lr 1e-4"
def STORE_TIMES(): return json.loads((ROOT/"docs"/"store_times.json").read_text())
CMP_MD, ISSUE2 = "bench/results/compare_cpu/compare.md", "bench/results/issue2_cpu.csv"
def cmp(method, col): return row(CMP, method=method)[col]
SEEDS, SELECTION = "bench/results/compare_seeds_cpu/seeds.csv", "bench/results/compare_seeds_cpu/selection.csv"
SEED_METHODS = ("full", "llrd", "freeze", "lora", "qlora", "prompt_tuning", "dora", "rslora")   # dora, rslora: added later, at LoRA's rate (seeds.FOLLOW)
def seed_rows(m): return [r for r in rows(SEEDS) if r["method"] == m]
def seed_values(m, col, keep_nan=False):
    vals = [float(r[col]) if r[col] not in ("", "nan") else float("nan") for r in seed_rows(m)]
    return vals if keep_nan else [v for v in vals if v == v]
def mean_sd(x, scale, nd, unit):
    from ft_course.seeds import mean_sd as ms
    return ms(x, scale, nd, unit)
def lora(config, col="dev_accuracy"): return row(LORA, config=config)[col]
# for the block "notebooks 00-10b" at the end of CLAIMS
GPU, MEMV = "bench/results/gpu_NVIDIA_H200.csv", "bench/results/memory_validation.csv"
PLAYS, PLAYS_MD = "bench/results/compare_plays_cpu/compare.csv", "bench/results/compare_plays_cpu/compare.md"
def md_rows(path:str)->list[dict]:
    "The rows of the first pipe table of a markdown file under the repository root"
    lines = [l.strip().strip("|").split("|") for l in (ROOT/path).read_text().splitlines() if l.startswith("|")]
    return [dict(zip([c.strip() for c in lines[0]], [c.strip() for c in l])) for l in lines[2:]]
def half_up(s, nd=1):
    from decimal import Decimal, ROUND_HALF_UP
    return str(Decimal(s).quantize(Decimal(1).scaleb(-nd), ROUND_HALF_UP))
def minus(s): return s.replace("-", "\u2212")   # the prose's minus sign
def gpu(name, col): return row(GPU, name=name)[col]
def kilo(x): return f"{float(x) / 1000:.1f}k"
def memv(name, col="error_pct"): return float(row(MEMV, name=name)[col])
def abs_range(names, fmt): return span((abs(memv(n)) for n in names), fmt)
def plays(m, col): return row(PLAYS, method=m)[col]
def pack(model, packing):
    "The row of bench/results/sft_packing.md for a model and a packing mode (the start of their names)"
    hits = [r for r in md_rows("bench/results/sft_packing.md") if r["model"].startswith(model) and r["packing"].startswith(packing)]
    if len(hits) != 1: raise LookupError(f"bench/results/sft_packing.md: {len(hits)} rows for {model!r}, {packing!r}")
    return hits[0]
def store_minutes(n): return "%.0f" % (STORE_TIMES()[n]["seconds"] / 60)
ADAPTERS = "bench/results/adapters_cpu.csv"
ADAPTER_MODELS = ("base", "sst2", "alpaca", "linear", "cat", "ties", "dare_linear")
def adapters(m, col): return next(r[col] for r in rows(ADAPTERS) if r["model"].split()[-1] == m)
def adapters_share(m, col, own):   # 07c's `gain_kept` on the stored scores
    from ft_course.adapters import gain_kept
    return gain_kept(*(float(adapters(x, col)) for x in (m, "base", own)))

DPO = "bench/results/dpo_cpu.csv"
RPO9 = dict(learning_rate=9e-4, loss_type="sigmoid+sft")   # 07b's exploratory configuration (`--extra sigmoid+sft:9e-4`)
@functools.cache
def dpo_frame():
    import pandas as pd
    return pd.read_csv(ROOT/DPO)
def dpo_config(config=None):   # None: the configuration 07b's `chosen_rows` chose on the validation split
    from ft_course.dpo import chosen_rows
    return config or chosen_rows(dpo_frame())[0]
def dpo_val(col, model="dpo", **config):   # one validation row (seed 0): the SFT model's, or a DPO configuration's
    from ft_course.dpo import dpo_rows
    d = dpo_rows(dpo_frame(), eval_set="validation", **(config or RPO9))
    return float(d[d.model == model][col].item())
def dpo_dev(model, col, seed=None, config=None):   # dev rows of the SFT model or of a DPO configuration (default: the chosen one)
    from ft_course.dpo import dpo_rows
    d = dpo_rows(dpo_frame(), **dpo_config(config))
    d = d[(d.model == model) & ((d.seed == seed) if seed is not None else True)]
    return d[col].astype(float).tolist()
def dpo_gain(col, config=None): return float(np.mean(dpo_dev("dpo", col, config=config)) - np.mean(dpo_dev("sft", col)))
def dpo_spread(col, config=None): return max(float(np.std(dpo_dev(m, col, config=config), ddof=1)) for m in ("sft", "dpo"))
def dpo_verdict(col, config=None): return "beyond" if dpo_gain(col, config) > dpo_spread(col, config) else "within"
DPO_COLS = (("strict", "strict"), ("pref", "pref_accuracy"))   # claim-name part, csv column
def dpo_diff(col, seed, config=None): return signed(100 * (dpo_dev("dpo", col, seed, config)[0] - dpo_dev("sft", col, seed)[0]))
def signed(x, nd=1): return minus(f"{x:+.{nd}f}")
def scale_json(name): return json.loads((ROOT/"bench/results"/f"{name}.json").read_text())
def scale_gap(a, b): return max(abs(x - y) for x, y in zip(scale_json(f"ddp_cpu/{a}")["losses"], scale_json(f"ddp_cpu/{b}")["losses"]))

CLAIMS = {
    # the comparison run (bench/results/compare_cpu): `ft-course compare --profile cpu ...`, command in its compare.md
    "naive_throughput_ratio": lambda: times(summary(CMP_MD)["throughput_ratio"]),
    "naive_memory_ratio": lambda: times(summary(CMP_MD)["memory_ratio"]),
    "naive_examples_per_s": lambda: f"{float(cmp('naive', 'examples_per_s')):.1f}",
    "full_examples_per_s": lambda: f"{float(cmp('full', 'examples_per_s')):.1f}",
    "naive_peak_gb": lambda: f"{float(cmp('naive', 'peak_mem_mb')) / 1000:.2f}",
    "full_peak_gb": lambda: f"{float(cmp('full', 'peak_mem_mb')) / 1000:.2f}",
    "naive_accuracy": lambda: pct(cmp("naive", "accuracy")),
    **{f"cmp_{m}_accuracy": (lambda m=m: pct(cmp(m, "accuracy")))
       for m in ("full", "llrd", "freeze", "lora", "qlora", "prompt_tuning")},
    **{f"cmp_{m}_peak_gb": (lambda m=m: f"{float(cmp(m, 'peak_mem_mb')) / 1000:.2f}") for m in ("full", "freeze", "lora", "qlora")},
    "cmp_full_time_to_target": lambda: f"{float(cmp('full', 'time_to_target_s')):.0f}",
    "cmp_load_range": lambda: span((float(r["load_avg_1min"]) for r in rows(CMP)), "%.1f-%.1f"),
    "cmp_start_mb": lambda: "%.0f" % round(np.mean([float(r["start_mem_mb"]) for r in rows(CMP)]), -1),
    "cmp_lora_saving_gb": lambda: "%.1f" % ((float(cmp("full", "peak_mem_mb")) - float(cmp("lora", "peak_mem_mb"))) / 1000),
    **{f"cmp_{m}_s_per_step": (lambda m=m: "%.1f" % (float(cmp(m, "ms_per_step")) / 1000)) for m in ("lora", "qlora")},
    "cmp_lora_saved_mb": lambda: "%.1f" % float(cmp("lora", "saved_mb")),
    "cmp_prompt_tuning_saved_mb": lambda: "%.2f" % float(cmp("prompt_tuning", "saved_mb")),
    "cmp_full_saved_mb": lambda: "%.0f" % float(cmp("full", "saved_mb")),
    "cmp_naive_steps": lambda: "%d" % int(float(cmp("naive", "steps"))),
    "cmp_time_to_target_ratio": lambda: times(summary(CMP_MD)["time_to_target_ratio"]),
    # the comparison over three seeds at rates chosen on a selection split (notebook 10c, bench/results/compare_seeds_cpu)
    **{f"seed_{m}_{k}": (lambda m=m, c=c, f=f: mean_sd(seed_values(m, c), *f)) for m in SEED_METHODS
       for k, c, f in (("accuracy", "accuracy", (100, 1, "%")), ("peak_gb", "peak_mem_mb", (1e-3, 2, "")),
                       ("time_to_target", "time_to_target_s", (1, 0, "")), ("ms", "ms_per_step", (1, 0, "")))},
    **{f"seed_{m}_reached": (lambda m=m: "%d/%d" % (sum(v == v for v in seed_values(m, "time_to_target_s", keep_nan=True)),
                                                    len(seed_values(m, "time_to_target_s", keep_nan=True)))) for m in SEED_METHODS},
    **{f"seed_{m}_rate": (lambda m=m: sci(seed_rows(m)[0]["learning_rate"])) for m in SEED_METHODS},
    **{f"seed_prompt_tuning_s{k}": (lambda k=k: pct(next(r["accuracy"] for r in seed_rows("prompt_tuning") if r["seed"] == str(k))))
       for k in (42, 1, 2)},
    "sel_full_best": lambda: pct(max(float(r["selection_accuracy"]) for r in rows(SELECTION) if r["method"] == "full")),
    # LoRA sweep (bench/results/lora_cpu.md)
    **{f"lora_{c}": (lambda c=c: pct(lora(c))) for c in ("r1", "r4", "r8", "r16", "r64", "r8_all", "r8_lr5e-4",
                                                          "r8_lr1e-3", "r8_head_only")},
    "lora_r8_all_trainable": lambda: f"{int(lora('r8_all', 'trainable')):,}",
    # 02: the linear probe on frozen MiniLM features, and the stored full fine-tuning run
    **{f"probe_{k}": (lambda p=p: output("02_full_finetune", p + r": '(\d+\.\d%)'"))
       for k, p in (("mean", r"'mean pooling'"), ("cls", r"'\[CLS\]'"), ("pooler", r"'pooler'"))},
    "full_cpu_accuracy": lambda: pct(output("02_full_finetune", r"'eval_accuracy': (0\.\d+)")),
    # 05: what double quantisation saves (arithmetic on the block sizes, printed by the notebook)
    "dq_bits_saved": lambda: f"{4.5 - (4 + 8 / 64 + 32 / (64 * 256)):.3f}",
    "dq_bytes_per_1000": lambda: f"{(4.5 - (4 + 8 / 64 + 32 / (64 * 256))) * 1000 / 8:.1f}",
    # full fine-tuning, LLRD and freezing, one epoch on 2,000 rows (bench/results/issue2_cpu.md)
    "issue2_full_accuracy": lambda: pct(row(ISSUE2, name="full FT, course recipe")["dev_accuracy"]),
    "issue2_full_1e-4_accuracy": lambda: pct(row(ISSUE2, name="full FT, lr 1e-4")["dev_accuracy"]),
    "issue2_llrd_accuracy": lambda: pct(row(ISSUE2, name="LLRD 0.9, head lr 1e-4")["dev_accuracy"]),
    "issue2_load_range": lambda: span((float(r["load_avg_1m"]) for r in rows(ISSUE2)), "%.1f-%.1f"),
    "issue2_llrd_5e-5_accuracy": lambda: pct(row(ISSUE2, name="LLRD 0.9, head lr 5e-5")["dev_accuracy"]),
    "issue2_freeze_accuracy": lambda: pct(row(ISSUE2, name=FREEZE)["dev_accuracy"]),
    "issue2_freeze_frozen_share": lambda: "%.0f%%" % (100 * (1 - float(row(ISSUE2, name=FREEZE)["trainable_params"]) / float(row(ISSUE2, name=FREEZE)["total_params"]))),
    **{f"issue2_{k}_rss_gb": (lambda n=n: "%.2f" % (float(row(ISSUE2, name=n)["peak_rss_mb"]) / 1000)) for k, n in (("freeze", FREEZE), ("llrd", LLRD))},
    **{f"issue2_{k}_ms": (lambda n=n: "%.0f" % float(row(ISSUE2, name=n)["ms_per_step"])) for k, n in (("freeze", FREEZE), ("llrd", LLRD))},
    "issue2_full_4000_accuracy": lambda: pct(row(ISSUE2, name="full FT, lr 1e-4, 4,000 rows")["dev_accuracy"]),
    "issue2_full_rss_gb": lambda: "%.2f" % (float(row(ISSUE2, name="full FT, course recipe")["peak_rss_mb"]) / 1000),
    "issue2_full_examples_per_s": lambda: "%.0f" % float(row(ISSUE2, name="full FT, course recipe")["examples_per_s"]),
    **{f"issue2_tutorial_{k}": (lambda c=c, f=f: f(row(ISSUE2, name=TUTORIAL)[c])) for k, c, f in (
        ("accuracy", "dev_accuracy", pct), ("peak_lr", "peak_lr_logged", lambda x: "%.1e" % float(x)),
        ("loss", "last_loss", lambda x: "%.3f" % float(x)), ("examples_per_s", "examples_per_s", lambda x: "%.2f" % float(x)),
        ("rss_gb", "peak_rss_mb", lambda x: "%.2f" % (float(x) / 1000)))},
    # how long the stored outputs took (docs/store_times.json, written by docs/store_outputs.py)
    **{f"store_{n[:2]}_seconds": (lambda n=n: "%d" % STORE_TIMES()[n]["seconds"]) for n in ("02_full_finetune", "03_llrd")},
    # 03: the stored cpu run of full fine-tuning, LLRD and freezing (4,000 rows, two epochs)
    **{f"llrd_stored_{k}": (lambda r=r: pct(output("03_llrd", r + r"\s+\d+\s+[\d.]+\s+(0\.\d+)")))
       for k, r in (("full", "full fine-tuning"), ("llrd", "LLRD 0.8"), ("freeze", r"freeze embeddings \+ layer 0"))},
    **{f"llrd_stored_{k}_s": (lambda r=r: "%.0f" % float(output("03_llrd", r + r"\s+\d+\s+([\d.]+)\s+0\.\d+")))
       for k, r in (("full", "full fine-tuning"), ("llrd", "LLRD 0.8"), ("freeze", r"freeze embeddings \+ layer 0"))},
    # 04: the stored LoRA run (classifier only in modules_to_save, lr 1e-3, two epochs): the eval at each epoch's end
    **{f"lora_stored_epoch{e}": (lambda e=e: pct(output("04_lora", rf"\n\d+\s+{e}\.0\s+[\d.]+\s+(0\.\d+)")))
       for e in (1, 2)},
    # prompt tuning on MiniLM (bench/results/prompt_tuning_cpu.md)
    "pt_1ep_accuracy": lambda: pct(row(PT, name="sweep lr=0.03")["accuracy"]),
    "pt_3ep_accuracy": lambda: pct(row(PT, name="best lr=0.03, 3 epochs")["accuracy"]),
    "pt_gap_points": lambda: f"{100 * (float(row(ISSUE2, name='full FT, course recipe')['dev_accuracy']) - float(row(PT, name='best lr=0.03, 3 epochs')['accuracy'])):.1f}",
    # --- notebooks 00, 04-08, 10, 10b: numbers tied in a later pass -------------------------------------------------------
    # how long the stored outputs took (docs/store_times.json)
    **{f"store_{n[:2]}_minutes": (lambda n=n: store_minutes(n)) for n in ("02_full_finetune", "04_lora", "05_qlora", "06_prompt_tuning", "08_monitoring")},
    # 00: the dequantised SmolLM2 folder
    "setup_smollm2_mib": lambda: output("00_setup", r"smollm2-135m-instruct (\d+) MiB on disk"),
    # 04: the LoRA sweep (bench/results/lora_cpu.csv) and the stored run
    "lora_nb_qv_rss_range": lambda: span((float(r["peak_rss_mb"]) / 1000 for r in rows(LORA) if r["target_modules"] == "query+value"), "%.2f–%.2f"),
    "lora_r8_all_rss_gb": lambda: "%.2f" % (float(lora("r8_all", "peak_rss_mb")) / 1000),
    **{f"lora_{c}_adapter_mb": (lambda c=c: "%.2f" % float(lora(c, "adapter_mb"))) for c in ("r8", "r8_head_only", "r64")},
    **{f"lora_{c}_trainable_pct": (lambda c=c, nd=nd: pct(float(lora(c, "trainable_pct")) / 100, nd)) for c, nd in (("r1", 2), ("r64", 2), ("r8_all", 1))},
    "lora_nb_model_mb": lambda: "%.1f" % float(output("04_lora", r"full model ([\d.]+) MB")),
    # 05: double quantisation's largest change of an absmax (printed by the notebook)
    "qlora_dq_absmax_error": lambda: output("05_qlora", r"relative absmax error from double quantisation: ([\d.]+%)"),
    # 06: prompt tuning (bench/results/prompt_tuning_cpu.csv; the stored run) against the stored full fine-tuning run of 02
    "pt_trainable_pct": lambda: pct(float(row(PT, name="sweep lr=0.03")["trainable_pct"]) / 100, 3),
    "pt_pooler_trainable_pct": lambda: pct(float(row(PT, name="+ pooler lr=0.03")["trainable_pct"]) / 100),
    "pt_stored_accuracy": lambda: output("06_prompt_tuning", r"; dev accuracy (\d+\.\d%)"),
    "pt_stored_s_per_step": lambda: "%.1f" % (lambda n, s: float(s) / int(n))(*groups("06_prompt_tuning", r"(\d+) steps in ([\d.]+) s; trainable")),
    "full_stored_s_per_step": lambda: "%.1f" % (int(output("02_full_finetune", r"(\d+) ms/step")) / 1000),
    # 07: packing vs padding (bench/results/sft_packing.md)
    "sft_pack_padding": lambda: pack("tiny", "no")["padding fraction"],
    "sft_pack_bfd_padding": lambda: pack("tiny", "bfd")["padding fraction"],
    "sft_pack_removed": lambda: "%.0f%%" % float(pack("tiny", "no")["padding fraction"].rstrip("%")),
    # 08: the stored overfitting run (its table of evaluations, and the line printed when it stopped)
    **{f"mon_{k}": (lambda s=s, i=i, f=f: f(groups("08_monitoring", rf"\n{s}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")[i]))
       for k, s, i, f in (("best_loss", 20, 0, lambda x: "%.3f" % float(x)), ("best_accuracy", 20, 1, pct),
                          ("last_loss", 32, 0, lambda x: "%.3f" % float(x)), ("last_accuracy", 32, 1, pct),
                          ("first_train_loss", 4, 2, lambda x: "%.2f" % float(x)), ("last_train_loss", 32, 2, lambda x: "%.3f" % float(x)))},
    "mon_stopped_s": lambda: "%.0f" % float(output("08_monitoring", r"stopped at step \d+ of \d+ in ([\d.]+) s")),
    # 10: the estimator's checks (stored outputs), the CPU validation (bench/results/memory_validation.csv), the H200 run
    "mem_autograd_worst": lambda: "%.1f%%" % max(abs(float(x)) for x in re.findall(r"'(?:full|freeze|lora|prompt_tuning|bert full)': '([-+][\d.]+)%'", outputs("10_memory"))),
    "mem_val_mae": lambda: "%.1f%%" % np.mean([abs(float(r["error_pct"])) for r in rows(MEMV)]),
    "mem_val_worst": lambda: "%.0f%%" % max(abs(float(r["error_pct"])) for r in rows(MEMV)),
    "mem_val_within10": lambda: "%d" % sum(abs(float(r["error_pct"])) <= 10 for r in rows(MEMV)),
    **{f"mem_val_{k}": (lambda n=n, f=f: minus(f % memv(n))) for k, n, f in (
        ("qlora_l", "L_qlora_r8_all", "%.0f%%"), ("adamw8bit", "L_full_adamw8bit", "%.0f%%"), ("ckpt", "L_full_ckpt_b8_s256", "%.1f%%"))},
    "mem_val_qlora_m": lambda: "%.0f%%" % abs(memv("M_qlora_r8_all")),
    "mem_val_qlora_missing_mib": lambda: "%.0f" % round(memv("L_qlora_r8_all", "measured_mib") - memv("L_qlora_r8_all", "predicted_mib"), -1),
    "mem_val_small_range": lambda: abs_range(("L_full_sgd", "L_freeze4", "L_lora_r8_qv", "L_prompt_20"), "%.0f–%.0f%%"),
    "mem_val_small_mib": lambda: span((memv(n, "measured_mib") for n in ("L_full_sgd", "L_freeze4", "L_lora_r8_qv", "L_prompt_20")), "%.0f–%.0f"),
    "mem_val_large_range": lambda: abs_range(("L_full_b8_s256", "L_lora_r16_all_b8_s256"), "%.1f–%.1f%%"),
    "mem_qwen_b16_logits_gib": lambda: "%.1f" % float(output("10_memory", r"logits ([\d.]+), overhead [\d.]+ GiB\) exceeds the device's 15")),
    "mem_qwen_b16_total_gib": lambda: output("10_memory", r"Qwen2.5-0.5B, lora, batch 16 x 512 tokens, fp16: estimated peak ([\d.]+) GiB"),
    "mem_8b_b4_logits_gib": lambda: "%.0f" % float(output("10_memory", r"logits ([\d.]+), overhead [\d.]+ GiB\) exceeds the device's 80")),
    **{f"gpu_{k}_gib": (lambda n=n, f=f: f % float(gpu(n, "measured_gib"))) for k, n, f in (
        ("qwen7b_qlora", "qwen7b_qlora_ckpt_b1x512", "%.2f"), ("llama8b_qlora", "llama8b_qlora_ckpt_b4x1024", "%.2f"),
        ("t4_recipe", "05 qlora 7B cells (T4 recipe)", "%.1f"))},
    "gpu_qwen05b_b8_under": lambda: span((abs(float(gpu(n, "error_pct"))) for n in ("qwen05b_full_b8x512", "qwen05b_lora_b8x512", "qwen05b_qlora_ckpt_b8x512")), "%.1f-%.1f%%"),
    **{f"gpu_{k}_k": (lambda n=n: kilo(gpu(n, "tokens_per_s"))) for k, n in (
        ("full_default", "full default b8"), ("full_default_run2", "full default b8 (run 2)"), ("full_liger_b32", "full liger b32"),
        ("full_compile_b32", "full compile b32 (run 2)"), ("lora_default", "lora default b8 (run 2)"), ("lora_liger_b32", "lora liger dropout0 b32"),
        ("lora_liger_b64", "lora liger dropout0 b64"), ("full_liger_ckpt_b32", "full liger ckpt b32"), ("qlora_best", "qlora liger dropout0 b32"))},
    **{f"gpu_{k}_mfu": (lambda n=n: "%.1f%%" % float(gpu(n, "mfu_pct"))) for k, n in (
        ("full_default", "full default b8"), ("full_liger_b32", "full liger b32"), ("full_compile_b32", "full compile b32 (run 2)"))},
    **{f"gpu_{k}_peak_gib": (lambda n=n: half_up(gpu(n, "peak_gib"))) for k, n in (
        ("full_liger_b32", "full liger b32"), ("full_compile_b32", "full compile b32 (run 2)"), ("lora_liger_b64", "lora liger dropout0 b64"),
        ("full_liger_ckpt_b32", "full liger ckpt b32"))},
    **{f"gpu_{k}_speedup": (lambda n=n: times(float(gpu(n, "tokens_per_s")) / float(gpu("lora default b8 (run 2)", "tokens_per_s")), 2))
       for k, n in (("lora_liger_b32", "lora liger dropout0 b32"), ("lora_liger_b64", "lora liger dropout0 b64"))},
    "gpu_ckpt_slowdown": lambda: "%.0f%%" % (100 * (1 - float(gpu("full liger ckpt b32", "tokens_per_s")) / float(gpu("full liger b32", "tokens_per_s")))),
    # 10b: the comparison on the Shakespeare plays (bench/results/compare_plays_cpu) and the stored run
    "plays_majority": lambda: pct(summary(PLAYS_MD)["majority_accuracy"]),
    "plays_target": lambda: pct(summary(PLAYS_MD)["target_accuracy"]),
    **{f"plays_{m}_accuracy": (lambda m=m: pct(plays(m, "accuracy"))) for m in ("full", "llrd", "freeze", "lora", "qlora")},
    "plays_stored_accuracy": lambda: pct(output("10b_own_data", r"validation accuracy (0\.\d+)")),
    **{f"plays_{m}_saved_mb": (lambda m=m, f=f: f % float(plays(m, "saved_mb"))) for m, f in (("lora", "%.1f"), ("prompt_tuning", "%.2f"), ("full", "%.0f"))},
    "plays_full_peak_gb": lambda: "%.2f" % (float(plays("full", "peak_mem_mb")) / 1000),
    "plays_full_predicted_gb": lambda: "%.2f" % (float(plays("full", "predicted_peak_mb")) / 1000),
    "plays_full_predicted_miss": lambda: "%.0f%%" % (100 * (1 - float(plays("full", "predicted_peak_mb")) / float(plays("full", "peak_mem_mb")))),
    # 07c: two task adapters and their merges (bench/results/adapters_cpu.csv)
    **{f"adapters_sst2_{m}": (lambda m=m: pct(adapters(m, "sst2_accuracy"))) for m in ADAPTER_MODELS},
    **{f"adapters_loss_{m}": (lambda m=m: "%.3f" % float(adapters(m, "alpaca_loss"))) for m in ADAPTER_MODELS},
    "adapters_alpaca_gain": lambda: pct(1 - float(adapters("alpaca", "alpaca_loss")) / float(adapters("base", "alpaca_loss"))),
    **{f"adapters_share_{t}_{m}": (lambda t=t, c=c, o=o, m=m: minus("%.2f" % adapters_share(m, c, o)))
       for t, c, o in (("sst2", "sst2_accuracy", "sst2"), ("alpaca", "alpaca_loss", "alpaca")) for m in ADAPTER_MODELS[3:]},
    "adapters_keep_both": lambda: str(sum(r["keeps_sst2"] == r["keeps_alpaca"] == "True" for r in rows(ADAPTERS) if r["model"].startswith("merge"))),
    # 07b: SFT vs SFT + DPO on the dev subset, 3 seeds (bench/results/dpo_cpu.csv, command in dpo_cpu.md)
    **{f"dpo_{m}_{k}": (lambda m=m, c=c, f=f: mean_sd(dpo_dev(m, c), *f)) for m in ("sft", "dpo")
       for k, c, f in (("strict", "strict", (100, 1, "%")), ("pref", "pref_accuracy", (100, 1, "%")), ("loss", "loss", (1, 3, "")))},
    **{f"dpo_{k}_{n}": (lambda c=c, f=f: f(c)) for k, f in (("gain", lambda c: signed(100 * dpo_gain(c))),
       ("spread", lambda c: "%.1f" % (100 * dpo_spread(c))), ("verdict", dpo_verdict)) for n, c in DPO_COLS},
    **{f"dpo_diff_{n}_s{s}": (lambda c=c, s=s: dpo_diff(c, s)) for n, c in DPO_COLS for s in (0, 1, 2)},
    "dpo_invalid_s2": lambda: "%d" % dpo_dev("dpo", "strict_invalid", 2)[0],
    "dpo_sft_invalid": lambda: "%d" % sum(dpo_dev("sft", "strict_invalid")),
    **{f"dpo_val_{k}_{c}": (lambda lr=lr, l=l, c=c: pct(dpo_val(c, learning_rate=lr, loss_type=l), 0)) for k, l, lr, cs in
       (("sig3", "sigmoid", 3e-4, ("strict", "pref_accuracy")), ("sig9", "sigmoid", 9e-4, ("strict", "lenient", "pref_accuracy")),
        ("rpo9", "sigmoid+sft", 9e-4, ("strict", "pref_accuracy")), ("rpo27", "sigmoid+sft", 2.7e-3, ("strict",))) for c in cs},
    **{f"dpo_val_{k}_loss": (lambda lr=lr, l=l: "%.2f" % dpo_val("loss", learning_rate=lr, loss_type=l)) for k, l, lr in
       (("sig3", "sigmoid", 3e-4), ("sig9", "sigmoid", 9e-4), ("rpo9", "sigmoid+sft", 9e-4))},
    "dpo_val_sft_loss": lambda: "%.2f" % dpo_val("loss", model="sft"),
    # the exploratory configuration, against the same SFT rows
    **{f"dpo_rpo_{k}": (lambda c=c, f=f: mean_sd(dpo_dev("dpo", c, config=RPO9), *f)) for k, c, f in
       (("strict", "strict", (100, 1, "%")), ("pref", "pref_accuracy", (100, 1, "%")), ("loss", "loss", (1, 3, "")))},
    "dpo_rpo_gain_strict": lambda: signed(100 * dpo_gain("strict", RPO9)),
    "dpo_rpo_spread_strict": lambda: "%.1f" % (100 * dpo_spread("strict", RPO9)),
    "dpo_rpo_verdict_strict": lambda: dpo_verdict("strict", RPO9),
    **{f"dpo_rpo_diff_strict_s{s}": (lambda s=s: dpo_diff("strict", s, RPO9)) for s in (0, 1, 2)},
    "dpo_rpo_invalid": lambda: "%d" % sum(dpo_dev("dpo", "strict_invalid", config=RPO9)),
    "dpo_rate": lambda: sci(dpo_config()["learning_rate"]),
    # 10d: FSDP2 shard bytes per rank on CPU (bench/results/fsdp_cpu_bytes.json) and the DDP loss curves (bench/results/ddp_cpu),
    # each JSON with the command that wrote it
    "scale_fsdp_n_params": lambda: f"{scale_json('fsdp_cpu_bytes')['n_params']:,}",
    "scale_fsdp_rank_param_bytes": lambda: f"{max(r['params'] for r in scale_json('fsdp_cpu_bytes')['ranks']):,}",
    "scale_fsdp_full_param_bytes": lambda: f"{scale_json('fsdp_cpu_bytes')['unsharded']['params']:,}",
    "scale_ddp_max_gap": lambda: "%.1e" % scale_gap("two_process_b8", "one_process_b16"),
    "scale_control_gap": lambda: "%.3f" % scale_gap("two_process_b8", "one_process_b8"),
}


# --- checking and writing -------------------------------------------------------------------------------------------
def prose()->dict[str, str]:
    "Every text that may carry markers: each notebook's markdown cells (joined) and docs/README_dev.md"
    out = {}
    for p in sorted((ROOT/"nbs").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        out[f"nbs/{p.name}"] = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    out["docs/README_dev.md"] = (ROOT/"docs/README_dev.md").read_text()
    return out

def expected(key:str, claims:dict|None=None)->str:
    "The text the source of `key` gives now"
    claims = CLAIMS if claims is None else claims
    if key not in claims: raise KeyError(f"no claim named {key!r}: add it to CLAIMS in docs/claims.py")
    return claims[key]()

def check(texts:dict|None=None, # name -> text; default `prose()`
          claims:dict|None=None # default `CLAIMS`
         )->list[str]:
    "One line per marked number that differs from its source, or names no claim"
    errors = []
    for name, text in (prose() if texts is None else texts).items():
        for m in MARK.finditer(text):
            got = m["text"].strip(TRIM)
            try: want = expected(m["key"], claims)
            except (KeyError, LookupError) as e: errors.append(f"{name}: {e}"); continue
            if got != want: errors.append(f"{name}: {m['key']} says {got!r}, its source says {want!r}")
    return errors

def used(texts:dict|None=None)->set[str]:
    "The claim names that markers use"
    return {m["key"] for t in (prose() if texts is None else texts).values() for m in MARK.finditer(t)}

def _rewrite(text:str)->str:
    def sub(m):
        raw, got = m["text"], m["text"].strip(TRIM)
        try: return raw.replace(got, expected(m["key"]), 1) + m["mark"]
        except (KeyError, LookupError): return m[0]   # no source yet: left as it is, and `check` reports it
    return MARK.sub(sub, text)

def write()->int:
    "Rewrite every marked number from its source, in the notebooks and docs/README_dev.md; return the files changed"
    n = 0
    for p in sorted((ROOT/"nbs").glob("*.ipynb")):
        nb, changed = json.loads(p.read_text()), False
        for c in nb["cells"]:
            if c["cell_type"] != "markdown": continue
            old = "".join(c["source"]); new = _rewrite(old)
            if new != old: c["source"], changed = new.splitlines(True), True
        if changed: p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n"); n += 1
    dev = ROOT/"docs/README_dev.md"; old = dev.read_text(); new = _rewrite(old)
    if new != old: dev.write_text(new); n += 1
    return n


UNIT = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:%| s\b| ms\b| MB\b| GB\b| GiB\b|×)")

def unmarked(texts:dict|None=None)->dict[str, list[str]]:
    "Numbers with a unit (%, s, ms, MB, GB, GiB, ×) and no marker, with a little context: candidates to tie to a source"
    out = {}
    for name, text in (prose() if texts is None else texts).items():
        found = [text[max(0, m.start() - 30):m.end() + 5].replace("\n", " ") for m in UNIT.finditer(text)
                 if not text.startswith("<!--claim:", m.end())]
        if found: out[name] = found
    return out

if __name__ == "__main__":
    if "--unmarked" in sys.argv:
        for name, found in unmarked().items(): print(f"{name}: {len(found)}\n  " + "\n  ".join(found))
        sys.exit(0)
    if "--write" in sys.argv: print(f"rewrote numbers in {write()} file(s); now run `python docs/make_readme.py`")
    errs = check()
    print("\n".join(errs) or f"all {sum(len(MARK.findall(t)) for t in prose().values())} marked numbers match their sources")
    sys.exit(1 if errs else 0)
