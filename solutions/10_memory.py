"""Solutions to the exercises of `10_memory.ipynb`. Exercise 4 needs a CUDA GPU and the Hub: the test skips it
without one.

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import torch
from transformers import AutoModelForCausalLM
from ft_course.setup import build_tiny_causal_lm
from ft_course.memory import saved_tensor_bytes, model_shape, MemorySpec, activation_bytes, estimate_memory

def exercise_1(seq_lens=(64, 128, 256), batch:int=2)->dict:
    """Use `saved_tensor_bytes` on the tiny Llama with `attn_implementation="eager"` and with `"sdpa"` at sequence
    lengths 64, 128, 256. Which term grows quadratically? Compare with Korthikanti's `5·a·s/h`.

    Eager attention keeps the softmax output (b, a, s, s) for backward (and a dropped copy with attention
    dropout): bytes per token grow linearly in s, so the total grows as s^2. SDPA keeps no s x s matrix: bytes per
    token stay flat. Korthikanti et al. count per token per layer `34h + 5as` bytes (16-bit, with dropout); the
    quadratic share is `5as / 34h`: 5*4*256/(34*64) = 2.4 here at s=256 (the tiny model has few channels per
    head, so attention scores dominate early). Returns bytes per token for each s and implementation."""
    path = build_tiny_causal_lm()
    out = {}
    for impl in ("eager", "sdpa"):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_pretrained(path, attn_implementation=impl).train()
        for s in seq_lens:
            ids = torch.randint(5, m.config.vocab_size, (batch, s))
            out[(impl, s)] = saved_tensor_bytes(m, input_ids=ids, labels=ids, use_cache=False) / (batch * s)
    cfg = m.config
    out["korthikanti_quadratic_share"] = {s: 5 * cfg.num_attention_heads * s / (34 * cfg.hidden_size) for s in seq_lens}
    return out

def chunked_logits_bytes(shape, spec:MemorySpec, n_chunks:int=8, fused:bool=True)->int:
    """Loss-side bytes with a chunked cross-entropy: only one slice of the sequence has its fp32 log-softmax and
    gradients alive at a time. `fused=True` (Liger-Kernel's fused linear cross-entropy): the logits are never
    materialised whole either; `fused=False`: the 16/32-bit logits still are."""
    cb = 2 if spec.mixed else 4
    tokens = spec.batch_size * spec.seq_len
    per_slice = -(-tokens // n_chunks) * shape.vocab * (cb + 12)
    return per_slice if fused else tokens * shape.vocab * cb + -(-tokens // n_chunks) * shape.vocab * 12

def exercise_2(n_chunks:int=8)->dict:
    """The logits term for Llama-3.1-8B at batch 4 and 1,024 tokens is about 7 GiB. How much would a chunked
    cross-entropy (computing the loss over slices of the sequence, as Liger-Kernel does) save?

    `activation_bytes` charges b*s*V*(2 + 12) bytes in bf16: 4*1024*128,256*14 = 6.85 GiB. Chunked into 8 slices
    and fused with the LM head, one slice's worth is alive: 0.86 GiB, saving ~6 GiB (the whole term shrinks by
    the number of chunks). Unfused, the bf16 logits (1 GiB) stay and the fp32 part shrinks: 1.7 GiB. Returns GiB."""
    S = model_shape("Llama-3.1-8B")
    spec = MemorySpec(method="qlora", batch_size=4, seq_len=1024, precision="bf16")
    full = activation_bytes(S, spec)[1]
    return dict(full=full / 2**30, chunked_fused=chunked_logits_bytes(S, spec, n_chunks) / 2**30,
                chunked_unfused=chunked_logits_bytes(S, spec, n_chunks, fused=False) / 2**30)

def peak_with_accumulation(config, gradient_accumulation_steps:int=1, **spec_kw)->dict:
    """`estimate_memory` with gradient accumulation: after the first micro-batch the gradients are kept, so the
    next forward/backward runs with them alive: the peak is weights + states + grads + activations + logits
    instead of weights + states + max(activations + logits, grads). (Exercise 3's change, kept outside the
    library: `MemorySpec` itself is not edited.)"""
    e = estimate_memory(config, **spec_kw)
    base = e.weights + e.quantization + e.optimizer_states
    one = base + max(e.activations + e.logits, e.gradients)
    acc = base + e.gradients + e.activations + e.logits if gradient_accumulation_steps > 1 else one
    return dict(peak_gib=acc * 1.05 / 2**30, without_accumulation_gib=one * 1.05 / 2**30,
                grads_gib=e.gradients / 2**30, acts_logits_gib=(e.activations + e.logits) / 2**30)

def exercise_3(config:str="Llama-3.2-1B", seq_len:int=512)->dict:
    """Add `gradient_accumulation_steps` to `MemorySpec`: gradients now live across micro-batches. Where does the peak
    go for full fine-tuning at batch 1?

    At batch 1 the fp32 gradients (4 bytes x 1.2 B parameters = 4.6 GiB) are far larger than one example's
    activations and logits, so without accumulation the peak is set by the gradients at the end of the backward
    pass. With accumulation, the second micro-batch's activations and logits come on top of the kept
    gradients: the peak moves into the forward/backward of micro-batch 2 and rises by the activations + logits
    (1.8 GiB here at 512 tokens, 21.8 -> 23.6 GiB, mostly the logits of a 128k vocabulary). Returns both peaks (GiB, with 5% overhead)."""
    return peak_with_accumulation(config, 4, method="full", batch_size=1, seq_len=seq_len, precision="bf16") | \
        dict(batch_8=peak_with_accumulation(config, 4, method="full", batch_size=8, seq_len=seq_len, precision="bf16"))

def exercise_4(model:str|None=None)->dict:
    """With a GPU: measure `torch.cuda.max_memory_allocated()` for LoRA on Qwen2.5-0.5B at batch 4, 512 tokens, bf16,
    and compare with `estimate_memory("Qwen2.5-0.5B", method="lora", batch_size=4, seq_len=512)`.

    Needs a CUDA GPU (the test is skipped without one; no GPU was available when this was written, so it has not
    been run). Memory does not depend on the weights' values, so by default the model is built from its published
    config with random weights (no Hub needed); pass `model="Qwen/Qwen2.5-0.5B"` to load the real one. One
    optimizer step, as the estimate models."""
    from peft import LoraConfig, get_peft_model
    from ft_course.memory import as_config
    torch.cuda.reset_peak_memory_stats()
    m = (AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16) if model else
         AutoModelForCausalLM.from_config(as_config("Qwen2.5-0.5B"), dtype=torch.bfloat16)).cuda()
    pm = get_peft_model(m, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear"))
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, m.config.vocab_size, (4, 512), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16): loss = pm(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step()
    est = estimate_memory("Qwen2.5-0.5B", method="lora", batch_size=4, seq_len=512, precision="bf16")
    return dict(measured_gib=torch.cuda.max_memory_allocated() / 2**30, estimated_gib=est.total / 2**30)
