"Memory estimator: exact parameter counts, activation accounting against autograd, validation errors, fit warnings."
import json, warnings
import pytest, torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, TrainingArguments
from peft import LoraConfig, PromptTuningConfig, get_peft_model

from ft_course.setup import build_tiny_causal_lm, build_tiny_classifier
from ft_course.measure import saved_tensor_bytes
from ft_course.memory import (CUDA_CONTEXT_BYTES, GPUS, NF4_BITS, FitCheckCallback, MemorySpec, activation_bytes, as_config, check_fit,
                              estimate_memory, fit_table, lora_modules, measure_peak, model_shape, trainable_params,
                              warn_if_wont_fit, _build_for_spec)

ON_GPU = "with a CUDA GPU, load_4bit places the 4-bit model on the GPU: this checks the CPU path"

LLAMA = dict(model_type="llama", hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=344, vocab_size=1000, tie_word_embeddings=False)

@pytest.mark.parametrize("name,n", [("Qwen2.5-0.5B", 494_032_768), ("Llama-3.2-1B", 1_235_814_400),
                                    ("Llama-3.2-3B", 3_212_749_824), ("Llama-3.1-8B", 8_030_261_248)])
def test_known_sizes(name, n): assert model_shape(name).n_params == n

def test_counts_match_real_models():
    for path, auto, task in [(build_tiny_classifier(), AutoModelForSequenceClassification, "seq_cls"),
                             (build_tiny_causal_lm(), AutoModelForCausalLM, "causal_lm")]:
        m = auto.from_pretrained(path)
        assert model_shape(path, task).n_params == sum(p.numel() for p in m.parameters())

def test_trainable_counts_match_peft():
    path = build_tiny_classifier()
    S = model_shape(path, "seq_cls")
    lora = get_peft_model(AutoModelForSequenceClassification.from_pretrained(path),
                          LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS"))
    pt = get_peft_model(AutoModelForSequenceClassification.from_pretrained(path),
                        PromptTuningConfig(num_virtual_tokens=7, task_type="SEQ_CLS"))
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert trainable_params(S, MemorySpec(method="lora", lora_r=4, lora_targets=["query", "value"], task="seq_cls")) == count(lora)
    assert trainable_params(S, MemorySpec(method="prompt_tuning", num_virtual_tokens=7, task="seq_cls")) == count(pt)

def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="model_type"): as_config({"hidden_size": 8})
    with pytest.raises(ValueError, match="Llama-3.1-8B"): as_config("/nope/nowhere")
    with pytest.raises(ValueError, match="q_proj"): lora_modules(model_shape("Llama-3.2-1B"), ["query"])
    with pytest.raises(ValueError, match="optimizer"): MemorySpec(optimizer="adafactor")
    with pytest.raises(ValueError, match="seq_len"): MemorySpec(seq_len=0)
    with pytest.raises(ValueError, match="frozen_layers"): MemorySpec(method="freeze")
    with pytest.raises(ValueError, match="task"): model_shape("Llama-3.2-1B", "seq2seq")

@pytest.mark.parametrize("method,kw", [("full", {}), ("freeze", dict(frozen_layers=1)), ("lora", dict(lora_r=8)),
                                       ("prompt_tuning", dict(num_virtual_tokens=5)), ("full", dict(attn_implementation="eager"))])
def test_activations_match_autograd(method, kw):
    "The activation term is within 5% of the bytes autograd actually saves (counted with saved_tensors_hooks)"
    spec = MemorySpec(method=method, batch_size=2, seq_len=48, precision="fp32", device="cpu", **kw)
    torch.manual_seed(0)
    model = _build_for_spec(as_config(LLAMA), spec).train()
    ids = torch.randint(3, 1000, (2, 48))
    got = saved_tensor_bytes(model, input_ids=ids, labels=ids)
    acts, _ = activation_bytes(model_shape(LLAMA), spec)
    seq = 48 + (5 if method == "prompt_tuning" else 0)
    assert abs((acts + 2 * seq * 1000 * 4) / got - 1) < 0.05

def test_estimate_orders_and_terms():
    e = lambda **kw: estimate_memory("Llama-3.2-1B", **({"batch_size": 2, "seq_len": 256} | kw))
    full, lora, qlora = e(method="full"), e(method="lora"), e(method="qlora")
    assert qlora.weights < lora.weights and lora.total < full.total
    # QLoRA's fp32 MLP tensors (bitsandbytes returns its input's dtype, fp32 after prepare_model_for_kbit_training) cost more
    # activation memory than LoRA's bf16 ones: measured on an H200, 1B at 8 x 1,024 QLoRA peaked above LoRA (bench/results/gpu_*.md)
    assert qlora.activations > lora.activations
    lin_all = sum(i * o for i, o, _ in model_shape("Llama-3.2-1B").linears.values())   # includes the tied lm_head
    assert full.weights + full.gradients + full.optimizer_states == 16 * full.total_params + 2 * lin_all   # ~18 bytes/param
    assert e(method="full", optimizer="adamw_8bit").optimizer_states * 4 == full.optimizer_states
    assert e(method="full", optimizer="sgd").optimizer_states == 0
    assert e(method="full", gradient_checkpointing=True).activations < full.activations / 5
    assert e(method="full", batch_size=4).activations == 2 * full.activations
    assert e(method="lora", attn_implementation="eager", seq_len=1024).activations > e(method="lora", seq_len=1024).activations
    lin = sum(i * o for i, o, l in model_shape("Llama-3.2-1B").linears.values() if l is not None)
    assert qlora.quantization >= lin * (NF4_BITS - 4) / 8

def test_fit_table_and_warning():
    t = fit_table(sizes=("Qwen2.5-0.5B", "Llama-3.1-8B"))
    row = lambda m, meth: t[(t.model == m) & (t.method == meth)].iloc[0]
    assert row("Llama-3.1-8B", "full")["H100 80GB"] == "✗"
    assert row("Qwen2.5-0.5B", "QLoRA r16 + ckpt")["T4 16GB"] == "✓"
    big = estimate_memory("Llama-3.1-8B", method="full")
    with pytest.warns(UserWarning, match="will not fit.*gradient_checkpointing=True"):
        assert not warn_if_wont_fit(big, GPUS["A100 80GB"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_wont_fit(estimate_memory("Qwen2.5-0.5B", method="lora", batch_size=1, seq_len=64), GPUS["T4 16GB"])

def test_moved_names_are_the_same_objects():
    "Issue 13 moved these to one home each; the old import paths still give the same objects, and check_device left memory"
    import ft_course.memory as memory, ft_course.measure as measure, ft_course.vocabulary as vocabulary, ft_course.train as train
    import ft_course.lora as lora
    assert memory.KNOWN_CONFIGS is vocabulary.KNOWN_CONFIGS and memory.saved_tensor_bytes is measure.saved_tensor_bytes
    assert train.peak_memory_mb is measure.peak_memory_mb and train.reset_peak_memory is measure.reset_peak_memory
    assert lora.HEAD_NAMES is vocabulary.HEAD_NAMES and "pre_classifier" in lora.HEAD_NAMES
    assert not hasattr(memory, "check_device")

def test_check_fit_suggests_only_the_missing_fixes(capsys):
    "07's old default (batch 8 x 1,024 tokens, checkpointing on) on a T4: halve the batch, shorten max_length, go 4-bit"
    with pytest.warns(UserWarning, match="will not fit") as w:
        bad = check_fit("Qwen/Qwen2.5-0.5B-Instruct", device_memory_gib=15, method="lora", task="causal_lm", batch_size=8,
                        seq_len=1024, lora_r=8, gradient_checkpointing=True)
    assert not bad["fits"] and bad["estimate_gib"] > 15 and bad["available_gib"] == 15.0
    assert "WILL NOT FIT" in capsys.readouterr().out
    msg = str(w[0].message)
    assert "per_device_train_batch_size=4" in msg and "gradient_accumulation_steps" in msg and "max_length" in msg
    assert "qlora" in msg                                   # the 4-bit option
    assert "gradient_checkpointing=True" not in msg         # already on: not suggested again

def test_check_fit_uses_the_gpus_precision(monkeypatch, capsys):
    class Props: name, total_memory, major, minor = "Tesla T4", 15360 * 2**20, 7, 5
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: Props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    check_fit("bert-base-uncased", method="full", task="seq_cls", batch_size=16, seq_len=512)
    assert "fp16" in capsys.readouterr().out

def test_fit_check_callback_reads_training_arguments(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(build_tiny_causal_lm())
    cb = FitCheckCallback(MemorySpec(method="full", seq_len=32, device="cpu"), device_memory_bytes=1)
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=3, use_cpu=True, report_to="none")
    with pytest.warns(UserWarning, match="will not fit"): cb.on_train_begin(args, None, None, model=model)
    assert cb.estimate.spec.batch_size == 3 and cb.estimate.spec.precision == "fp32"

@pytest.mark.parametrize("method", ["full", "prompt_tuning"])
def test_distilbert_estimate_matches_measurement(method):
    "DistilBERT, a common swap for the gpu profile's BERT (it names its sizes dim/n_layers/n_heads): predicted peak within 10% of measured"
    spec = MemorySpec(method=method, task="seq_cls", batch_size=8, seq_len=128, precision="fp32", device="cpu")
    predicted, measured = estimate_memory("distilbert-base-uncased", spec).total, measure_peak("distilbert-base-uncased", spec)
    assert abs(predicted / measured - 1) < 0.10, f"{method}: predicted {predicted / 2**20:.0f} MiB, measured {measured / 2**20:.0f} MiB"

# ---- GPU evidence (issue 14): QLoRA as notebook 05 builds it, checked against H200 measurements
H200_QUOTED = [   # (config, spec fields, measured max_memory_allocated GiB) quoted in issue 14 from an earlier H200 run
    ("Qwen/Qwen2.5-7B-Instruct", dict(method="qlora", batch_size=1, seq_len=512, gradient_checkpointing=True), 9.91),
    ("Llama-3.1-8B", dict(method="qlora", batch_size=4, seq_len=1024, gradient_checkpointing=True), 17.63),
    ("Llama-3.2-3B", dict(method="full", batch_size=4, seq_len=1024, gradient_checkpointing=True), 49.8)]

def _gpu_error(config, kw, measured_gib):
    spec = MemorySpec(precision="bf16", device="cuda", **kw)
    return (estimate_memory(config, spec).total - CUDA_CONTEXT_BYTES) / 2**30 / measured_gib - 1

@pytest.mark.parametrize("config,kw,measured", H200_QUOTED)
def test_quoted_h200_measurements_within_bar(config, kw, measured):
    "Never a false 'fits': the prediction is between -5% and +10% of what the H200 measured"
    err = _gpu_error(config, kw, measured)
    assert -0.05 <= err <= 0.10, f"{config} {kw}: {err:+.1%}"

def _stored_gpu_rows():
    import pandas as pd
    from pathlib import Path
    df = pd.read_csv(Path(__file__).parent.parent/"bench/results/gpu_NVIDIA_H200.csv")
    df = df[(df.section == "mem") & (df.status == "ok")]
    known = {"qwen05b_full_b8x512", "qwen05b_lora_b8x512", "qwen05b_qlora_ckpt_b8x512"}   # under-predicted: open, see notebook 10
    return [pytest.param(r.model, dict(method=r.method, batch_size=int(r.batch_size), seq_len=int(r.seq_len), optimizer=r.optimizer,
                                       gradient_checkpointing=bool(r.gradient_checkpointing), lora_r=json.loads(r.settings)["lora_r"]),
                         float(r.measured_gib), id=r["name"],
                         marks=[pytest.mark.xfail(strict=True, reason="Qwen2.5-0.5B at batch 8 x 512: under-predicted, cause open")] if r["name"] in known else [])
            for _, r in df.iterrows()]

@pytest.mark.parametrize("config,kw,measured", _stored_gpu_rows())
def test_stored_h200_rows_within_bar(config, kw, measured):
    "Every clean memory row of bench/gpu_check.py's stored H200 run, re-predicted with the current estimator"
    err = _gpu_error(config, kw, measured)
    assert -0.05 <= err <= 0.10, f"{config} {kw}: {err:+.1%}"

def test_qlora_terms_follow_prepare_model_for_kbit_training():
    "QLoRA weights: NF4 codes + every other weight in fp32 (prepare_model_for_kbit_training) + the head's 16-bit autocast copy"
    S = model_shape("Llama-3.1-8B")
    lin_blocks = sum(i * o for i, o, l in S.linears.values() if l is not None)
    e = estimate_memory("Llama-3.1-8B", method="qlora", batch_size=1, seq_len=128)
    head = S.vocab * S.h
    assert e.weights == lin_blocks // 2 + (S.n_params - lin_blocks) * 4 + head * 2 + 4 * e.trainable_params
    tied = model_shape("Llama-3.2-1B")   # tied head: the embedding matrix counted once, cast once
    assert sum(v for n, v in tied.params.items() if "embed" in n or "lm_head" in n) == tied.vocab * tied.h

@pytest.mark.skipif(torch.cuda.is_available(), reason=ON_GPU)
def test_build_for_spec_qlora_tied_head_cpu():
    "_build_for_spec builds QLoRA through load_4bit + prepare_model_for_kbit_training: a tied lm_head stays out of 4 bits and trains"
    import bitsandbytes as bnb
    cfg = as_config(dict(LLAMA, tie_word_embeddings=True))
    spec = MemorySpec(method="qlora", batch_size=2, seq_len=16, precision="bf16", device="cpu", gradient_checkpointing=True, lora_r=4)
    model = _build_for_spec(cfg, spec).train()
    base = model.get_base_model()
    assert not isinstance(base.lm_head, bnb.nn.Linear4bit) and isinstance(base.model.layers[0].mlp.up_proj.base_layer, bnb.nn.Linear4bit)
    assert base.lm_head.weight is base.model.embed_tokens.weight
    assert all(p.dtype == torch.float32 for n, p in base.named_parameters() if p.__class__.__name__ != "Params4bit")
    assert base.is_gradient_checkpointing
    ids = torch.randint(3, 1000, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16): loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

@pytest.mark.parametrize("method", ["lora", pytest.param("qlora", marks=pytest.mark.skipif(torch.cuda.is_available(), reason=ON_GPU))])
def test_mixed_precision_activations_match_autograd(method):
    "Under bf16 autocast: per-module LoRA input copies, and QLoRA's fp32 MLP tensors (bitsandbytes returns the input's dtype)"
    cfg = dict(LLAMA, hidden_size=256, intermediate_size=1024, tie_word_embeddings=True)
    spec = MemorySpec(method=method, batch_size=2, seq_len=64, precision="bf16", device="cpu")
    model = _build_for_spec(as_config(cfg), spec).train()
    def saved(s):
        ids = torch.randint(3, 1000, (2, s))
        with torch.autocast("cpu", dtype=torch.bfloat16): return saved_tensor_bytes(model, input_ids=ids, labels=ids)
    per_token = (saved(64) - saved(32)) / (2 * 32)          # the slope: constant terms (weight copies) cancel
    acts, _ = activation_bytes(model_shape(cfg), spec)
    assert abs((acts / (2 * 64) + 1000 * 4) / per_token - 1) < 0.03
