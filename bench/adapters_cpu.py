"""Two LoRA adapters on SmolLM2-135M-Instruct (SST-2 sentiment as a generative task, Alpaca instructions), loaded
on one base and merged with peft's add_weighted_adapter (linear, cat, ties, dare_linear); every model scored on both tasks.

    flock /tmp/ft_cpu.lock python bench/adapters_cpu.py      # cpu profile, about 22 minutes on 2 cores

Writes bench/results/adapters_cpu.csv (one row per model) and bench/results/adapters_cpu.md (table + command).
Everything (data, training, merges, scores, the margins) comes from ft_course.adapters (nbs/07c_adapters.ipynb).
"""
import os, sys, time, warnings, platform, shutil
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("FT_PROFILE", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ft_course.setup import get_profile, setup_env      # first: it quiets bitsandbytes' CPU-kernel notice
import pandas as pd, torch, datasets, transformers, peft
from ft_course.adapters import adapter_study, MARGINS, MERGES

warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
datasets.disable_progress_bars(); transformers.utils.logging.disable_progress_bar()
COMMAND = "flock /tmp/ft_cpu.lock python bench/adapters_cpu.py"
OUT = ROOT/"bench"/"results"
FOLDER = "/tmp/ft-course-runs/adapters_bench"
ALPACA_STEPS = 10     # half of 07's 20 steps of 8 conversations: the run shares 2 cores with other benchmarks


def main():
    setup_env()
    prof = get_profile()
    prof = replace(prof, sft=prof.sft | dict(max_steps=ALPACA_STEPS))
    t0 = time.perf_counter()
    df = pd.DataFrame(adapter_study(prof, FOLDER))
    df.to_csv(OUT/"adapters_cpu.csv", index=False)
    shutil.rmtree(FOLDER, ignore_errors=True)
    write_md(df, prof, time.perf_counter() - t0)
    print(df.round(3).to_string(), flush=True)


def write_md(df, prof, total_s):
    e, s = prof.evaluation, prof.sft
    d = df.copy()
    for c in d.columns:
        if d[c].dtype.kind == "f": d[c] = d[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    lines = [
        "# Adapters as building blocks: two task adapters on SmolLM2-135M-Instruct, and their merges (cpu profile)", "",
        f"Command: `{COMMAND}` (from the repository root; {total_s/60:.0f} minutes on {os.cpu_count()} CPU cores, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"peft {peft.__version__}).", "",
        f"Adapters: LoRA r=8, alpha 16, all linear layers, seed 0. SST-2: {e['max_steps']} steps of {e['per_device_train_batch_size']} "
        f"decontaminated training sentences, lr {e['learning_rate']:g}; scored on a fixed subset of {e['n_eval']} dev sentences "
        f"(strict accuracy, invalid answers wrong; completion loss). Alpaca: {s['max_steps']} steps of {s['per_device_train_batch_size']} "
        f"conversations, lr {s['learning_rate']:g}, max_length {s['max_length']}; scored by completion loss on 64 held-out rows "
        "(lower is better).", "",
        f"Merges (`MERGES`): {MERGES}.", "",
        f"Margins stated before the run (`MARGINS`): a model keeps SST-2 when its strict accuracy is at most "
        f"{MARGINS['sst2_accuracy']*100:.0f} points below the SST-2 adapter's; it keeps Alpaca when its completion loss is at most "
        f"{MARGINS['alpaca_loss']*100:.0f}% above the Alpaca adapter's.", "",
        d.to_markdown(index=False, disable_numparse=True), ""]
    (OUT/"adapters_cpu.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
