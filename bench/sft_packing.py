"""Packing vs padding for SFT: real tokens/s and padding fraction, same examples, fresh process per configuration.

Run from the repository root (needs ../shared/data/alpaca, CC BY-NC: measurement only, nothing is shipped):
    flock /tmp/ft_cpu.lock python bench/sft_packing.py > /tmp/sft_packing.log 2>&1
Writes bench/results/sft_packing.md.
"""
from __future__ import annotations
import tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve()   # the fresh processes load this script by its path: any cwd works

N_EXAMPLES, MAX_LENGTH, BATCH = 1000, 256, 8
MODELS = {"tiny (hidden 64, 2 layers)": {},
          "small (hidden 256, 4 layers)": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=688)}
CONFIGS = [dict(model=m, packing=p) for m in MODELS for p in (False, True)]
OUT = HERE.parent/"results"/"sft_packing.md"
CMD = "flock /tmp/ft_cpu.lock python bench/sft_packing.py > /tmp/sft_packing.log 2>&1"

def run_one(**cfg)->dict:
    "Train one epoch of one configuration (model, packing) in this process and return its measurements"
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer
    from ft_course.setup import build_tiny_causal_lm, get_profile, setup_env
    from ft_course.sft import (add_chat_template, alpaca_to_messages, batch_padding_fraction, load_instructions,
                               make_sft_config)
    from ft_course.measure import peak_memory_mb
    setup_env(offline=True)
    path = build_tiny_causal_lm(**MODELS[cfg["model"]])
    tok = add_chat_template(AutoTokenizer.from_pretrained(path))
    ds = load_instructions("local", n=N_EXAMPLES, seed=0).map(alpaca_to_messages, remove_columns=["instruction", "input", "output"])
    args = make_sft_config("/tmp/ft-course-runs/bench_sft", get_profile("tiny"), max_steps=-1, num_train_epochs=1,
                           max_length=MAX_LENGTH, per_device_train_batch_size=BATCH, packing=cfg["packing"],
                           learning_rate=1e-3, logging_steps=1000, disable_tqdm=True)
    model = AutoModelForCausalLM.from_pretrained(path)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    stats = batch_padding_fraction(trainer)
    t0 = time.perf_counter(); out = trainer.train(); secs = time.perf_counter() - t0
    return cfg | stats | dict(steps=out.global_step, seconds=secs, train_loss=out.training_loss,
                              real_tokens_per_s=stats["real_tokens"] / secs, positions_per_s=stats["positions"] / secs,
                              peak_rss_mb=peak_memory_mb(), threads=torch.get_num_threads())

def main():
    from ft_course.measure import run_in_fresh_process
    rows = []
    for i, cfg in enumerate(CONFIGS):
        log = Path(tempfile.gettempdir())/f"sft_packing-{i}.log"             # the child's stderr
        try: rows.append(run_in_fresh_process(f"{HERE}:run_one", cfg, log=log))   # a fresh process: its own peak RSS
        except RuntimeError as e: print(log.read_text()[-3000:], e); raise SystemExit(f"failed: {cfg}")
        print(rows[-1], flush=True)
    head = ("| model | packing | examples | batches (= optimizer steps) | real tokens | padding fraction | seconds | "
            "real tokens/s | positions/s | train loss | peak RSS (MB) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r['model']} | {'bfd (padding-free)' if r['packing'] else 'no (dynamic padding)'} | {r['examples']} | "
                   f"{r['batches']} | {r['real_tokens']:,} | {r['padding_fraction']:.1%} | {r['seconds']:.1f} | "
                   f"{r['real_tokens_per_s']:,.0f} | {r['positions_per_s']:,.0f} | {r['train_loss']:.3f} | {r['peak_rss_mb']:.0f} |\n"
                   for r in rows)
    speed = {m: [r["real_tokens_per_s"] for r in rows if r["model"] == m] for m in MODELS}
    note = "".join(f"- {m}: packing is {v[1]/v[0]:.2f}x the real tokens/s of padding.\n" for m, v in speed.items() if len(v) == 2)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(f"# SFT packing vs padding\n\nCommand (repository root): `{CMD}`\n\n"
                   f"{N_EXAMPLES} Alpaca examples (shared/data sample, seed 0) as conversations, assistant-only loss, "
                   f"max_length {MAX_LENGTH}, per_device_train_batch_size {BATCH}, one epoch, lr 1e-3 cosine, fp32, "
                   f"no gradient checkpointing, random Llama-like models from `build_tiny_causal_lm`, torch on "
                   f"{rows[0]['threads']} CPU threads, each configuration in a fresh process. Real tokens exclude padding; "
                   "positions are what the model computes on. The CPU is shared with other jobs (the lock only "
                   "serialises measurements), so compare timings only within one run of this script.\n\n"
                   + head + body + "\n" + note)
    print(OUT.read_text())

if __name__ == "__main__": main()
