"Regression guards for ft_course.qlora: NF4 vs bitsandbytes, the AVX512-BF16 gradient trap, clear errors, merging."
import sys, warnings
from unittest import mock

import pytest
import torch

bnb = pytest.importorskip("bitsandbytes")
import bitsandbytes.functional as bnbF
from ft_course.qlora import (nf4_code, quantize_blockwise, dequantize_blockwise, unpack_4bit, bits_per_param,
                             require_bitsandbytes, load_4bit, guard_cpu_4bit, bnb_4bit_config)
from ft_course.setup import build_tiny_causal_lm


def test_nf4_matches_bitsandbytes_codes():
    torch.manual_seed(1)
    W = torch.randn(128, 256) * 0.05 + 0.01                   # not centred, not zeros
    q, absmax = quantize_blockwise(W, nf4_code())
    qb, st = bnbF.quantize_4bit(W, blocksize=64, quant_type="nf4")
    assert torch.equal(unpack_4bit(qb, W.shape), q)
    assert torch.allclose(bnbF.dequantize_4bit(qb, st), dequantize_blockwise(q, absmax, nf4_code()), atol=1e-7)


def test_bits_per_param():
    assert bits_per_param() == 4.5
    assert abs(bits_per_param(double_quant=True) - 4.127) < 1e-3


def test_missing_bitsandbytes_says_what_to_install():
    with mock.patch.dict(sys.modules, {"bitsandbytes": None}):
        with pytest.raises(ImportError, match=r'pip install "ft_course\[qlora\]"'): require_bitsandbytes("cpu")


def test_no_backend_says_what_to_change():
    with mock.patch.object(bnbF, "quantize_4bit", side_effect=NotImplementedError("no kernel for this device")):
        with pytest.raises(RuntimeError, match="cannot quantise to 4-bit.*CUDA GPU"): require_bitsandbytes("cpu")


def test_bad_config():
    with pytest.raises(ValueError, match="compute_dtype"): bnb_4bit_config("float8")
    with pytest.raises(ValueError, match="task"): load_4bit("x", task="seq2seq")


def _lora_grads_after_trainer_eval(out, guard: bool):
    "Train a QLoRA tiny LM with Trainer, evaluating every 2 steps; return the grad norms logged after the first evaluation"
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments
    from datasets import Dataset
    path = build_tiny_causal_lm()
    tok = AutoTokenizer.from_pretrained(path)
    model = prepare_model_for_kbit_training(load_4bit(path, guard=guard), use_gradient_checkpointing=False)
    pm = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    texts = [f"the film is {w} and the cast is {v}" for w in ("good", "dull", "great", "bad") for v in ("fine", "weak")] * 4
    ds = Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(str(out), per_device_train_batch_size=8, max_steps=6, learning_rate=1e-2,
                             eval_strategy="steps", eval_steps=2, logging_steps=1, report_to="none", save_strategy="no",
                             use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    tr = Trainer(model=pm, args=args, train_dataset=ds, eval_dataset=ds.select(range(8)),
                 data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try: tr.train()
        except RuntimeError as e: return ("error", str(e))
    return [r["grad_norm"] for r in tr.state.log_history if "grad_norm" in r and r["step"] > 2]


def test_lora_gradients_survive_evaluation(tmp_path):
    "Fails if an evaluation pass silently cuts the 4-bit layers from autograd (the AVX512-BF16 repacking trap)"
    norms = _lora_grads_after_trainer_eval(tmp_path, guard=True)
    assert norms and all(g > 0 for g in norms), norms


@pytest.mark.skipif(not bnbF.has_avx512bf16() or torch.cuda.is_available(),
                    reason="the repacking trap needs a CPU with AVX512-BF16, and the 4-bit model on it (with a GPU, load_4bit uses the GPU)")
def test_trap_exists_without_guard(tmp_path):
    "Documents the trap: if this starts failing, bitsandbytes fixed it and the notebook's warning can be softened"
    norms = _lora_grads_after_trainer_eval(tmp_path, guard=False)
    if isinstance(norms, tuple): assert norms[0] == "error"          # layers with a bias: a loud RuntimeError
    else: assert norms and all(g == 0 for g in norms), norms          # bias-free layers: grad_norm 0.0, silently


def test_guard_restores_repacked_layers():
    path = build_tiny_causal_lm()
    m = load_4bit(path, guard=False)
    lin = [x for x in m.modules() if isinstance(x, bnb.nn.Linear4bit)]
    W0 = bnbF.dequantize_4bit(lin[0].weight.data, lin[0].weight.quant_state).clone()
    if bnbF.has_avx512bf16():
        m.eval()
        with torch.no_grad(): m(input_ids=torch.tensor([[1, 5, 9, 12]]))
        assert lin[0].weight.quant_state.packing_format_for_cpu
        with pytest.warns(UserWarning, match="repacked"): assert guard_cpu_4bit(m) == len(lin)
    else: assert guard_cpu_4bit(m) == len(lin)
    assert not getattr(lin[0].weight.quant_state, "packing_format_for_cpu", False)
    W1 = bnbF.dequantize_4bit(lin[0].weight.data, lin[0].weight.quant_state)
    assert (W1 - W0).abs().max() <= W0.abs().max() * 0.02       # absmax went through bfloat16 once: <1% per block
