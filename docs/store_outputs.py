"""Re-run notebooks and store their outputs, each in the profile the website shows it in, then clean the metadata.

    python docs/store_outputs.py                 # every notebook (about 25 minutes on 2 CPU cores)
    python docs/store_outputs.py 04_lora 08_monitoring

The website executes nothing: it renders what the notebooks store. So the stored outputs must come from real runs: the
`cpu` profile (the pretrained MiniLM classifier, and SmolLM2-135M-Instruct for the language-model notebooks 04-07)
wherever a notebook trains a model, and the `tiny` profile only where a real run adds nothing (`TINY_BECAUSE`). tests/test_docs.py checks that each notebook's stored profile is this one.
"""
import os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STORED_PROFILE = {"00_setup": "cpu", "00a_vocabulary": "cpu", "01_data": "cpu", "01a_measure": "cpu", "02_full_finetune": "cpu", "03_llrd": "cpu", "04_lora": "cpu",
                  "05_qlora": "cpu", "06_prompt_tuning": "cpu", "07_sft": "cpu", "07a_evaluation": "cpu",
                  "08_monitoring": "cpu",
                  "10_memory": "cpu", "10a_compare": "tiny", "10b_own_data": "cpu", "11_cli": "cpu", "12_instructor_guide": "tiny"}
TINY_BECAUSE = {"10a_compare": "it runs the tiny subset and reads the measured cpu table from bench/results",
                "12_instructor_guide": "its cells only reproduce error messages, on the tiny models"}


def store(name:str)->float:
    "Run one notebook in its stored profile with `nbdev-test --save`; return the seconds it took"
    env = os.environ | dict(FT_PROFILE=STORED_PROFILE[name], HF_HUB_OFFLINE="1",   # setup_env sets W&B offline without a key
                            HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg")
    t0 = time.time()
    subprocess.run(["nbdev-test", f"nbs/{name}.ipynb", "--save", "--cell-timeout", "0"], cwd=ROOT, env=env, check=True)
    return time.time() - t0


if __name__ == "__main__":
    names = sys.argv[1:] or list(STORED_PROFILE)
    unknown = [n for n in names if n not in STORED_PROFILE]
    if unknown: sys.exit(f"unknown notebook(s) {unknown}: use names from {list(STORED_PROFILE)}")
    for n in names: print(f"{n}: {STORED_PROFILE[n]} profile, {store(n):.0f} s", flush=True)
    subprocess.run(["nbdev-clean"], cwd=ROOT, check=True)
