"""The instruction-tuning run of notebook 07 (cpu profile) in a fresh process: training time, real tokens/s, peak RSS.

Same data, split, chat template and `SFTConfig` as 07's LoRA cell (SmolLM2-135M-Instruct, 200 Alpaca conversations,
LoRA r=8 on all linear layers, the profile's `sft_kwargs()`), but nothing else loaded, so the peak RSS is the run's own.
Run from the repository root (needs ../shared/data/alpaca, CC BY-NC: measurement only, nothing is shipped):
    flock /tmp/ft_cpu.lock python bench/sft_cpu.py
Writes bench/results/sft_cpu.md.
"""
import os, sys, time, warnings, platform
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CMD = "flock /tmp/ft_cpu.lock python bench/sft_cpu.py"

def main():
    from ft_course.setup import get_profile, setup_env
    from ft_course.measure import peak_memory_mb, reset_peak_memory
    import datasets, torch, transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import LoraConfig
    from trl import SFTTrainer
    from ft_course.sft import (add_chat_template, alpaca_to_messages, fix_pad_token, load_instructions, make_sft_config, quiet)
    setup_env(offline=True)
    warnings.filterwarnings("ignore", category=FutureWarning)
    datasets.disable_progress_bars(); transformers.utils.logging.disable_progress_bar()
    prof = get_profile("cpu")
    rss_start = peak_memory_mb()
    tok = add_chat_template(fix_pad_token(AutoTokenizer.from_pretrained(prof.causal_lm)))
    raw = load_instructions("local", n=232)                                   # as in 07
    split = raw.map(alpaca_to_messages, remove_columns=raw.column_names).train_test_split(test_size=32, seed=0)
    trainer = quiet(SFTTrainer(model=AutoModelForCausalLM.from_pretrained(prof.causal_lm), processing_class=tok,
                               train_dataset=split["train"], eval_dataset=split["test"],
                               peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"),
                               args=make_sft_config("/tmp/ft-course-runs/bench_sft_cpu", prof, disable_tqdm=True)))
    loss_before = trainer.evaluate()["eval_loss"]
    rss_loaded = peak_memory_mb(); reset_peak_memory()
    t0 = time.perf_counter(); out = trainer.train(); secs = time.perf_counter() - t0
    peak = peak_memory_mb()
    loss_after = trainer.evaluate()["eval_loss"]
    tokens = max(r["num_tokens"] for r in trainer.state.log_history if "num_tokens" in r)
    kw = prof.sft_kwargs()
    load = os.getloadavg()[0]
    OUT = ROOT/"bench"/"results"/"sft_cpu.md"
    OUT.write_text(f"""# LoRA SFT of SmolLM2-135M-Instruct on CPU (notebook 07's run, fresh process)

Command (repository root): `{CMD}`

SmolLM2-135M-Instruct (cpu profile, fp32), 200 Alpaca conversations (shared/data sample, `load_instructions("local", n=232)`,
32 held out), SmolLM2's ChatML template with generation markers, answers-only loss, LoRA r=8 / alpha 16 on all linear layers,
`max_length` {kw['max_length']}, batch {kw['per_device_train_batch_size']}, {kw['max_steps']} steps, lr {kw['learning_rate']:g} (10% warmup, cosine),
dynamic padding, torch {torch.__version__} on {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}.
The 2 cores are shared with other work (1-minute load average {load:.1f} at the end), so the time is indicative.

| steps | real tokens | train seconds | real tokens/s | s/step | peak RSS before train(): loading + one evaluation (MB) | peak RSS during train() (MB) | held-out loss before | after |
|---|---|---|---|---|---|---|---|---|
| {out.global_step} | {int(tokens):,} | {secs:.0f} | {tokens/secs:.0f} | {secs/out.global_step:.1f} | {rss_loaded:.0f} | {peak:.0f} | {loss_before:.3f} | {loss_after:.3f} |
""")
    print(OUT.read_text())

if __name__ == "__main__": main()
