"""Solutions to the exercises of `07c_adapters.ipynb`, on the `tiny` profile (random tiny Llama, two random adapters).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import tempfile, warnings
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from ft_course.setup import get_profile
from ft_course.adapters import load_adapters, merge_adapters, adapter_factors

LAYER = "layers.0.self_attn.q_proj"

def _two_adapters():
    "A base with two saved random adapters (non-zero B) loaded by name: 'a' and 'b'"
    prof, folder, paths = get_profile("tiny"), tempfile.mkdtemp(), {}
    for seed, name in ((1, "a"), (2, "b")):
        torch.manual_seed(seed)
        m = get_peft_model(AutoModelForCausalLM.from_pretrained(prof.causal_lm),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
        m.save_pretrained(f"{folder}/{name}"); paths[name] = f"{folder}/{name}"
    return load_adapters(AutoModelForCausalLM.from_pretrained(prof.causal_lm), paths)

def _dw(model, name):
    A, B, s = adapter_factors(model, name, LAYER)
    return s * B @ A

def exercise_1()->dict:
    """Merge the two adapters with `cat` and with `linear`, weights 0.5 each, and compare ΔW on one layer.

    `cat` gives exactly 0.5·ΔW₁ + 0.5·ΔW₂, the average of the two updates (relative error ~1e-7). `linear` gives the
    average plus 0.5·s·(B₁A₂ + B₂A₁): with random adapters the cross terms are about as large as the average itself,
    so `linear` is far from an average of the updates. Returns the relative distances to the average."""
    model = _two_adapters()
    avg = 0.5 * _dw(model, "a") + 0.5 * _dw(model, "b")
    out = {}
    for ct in ("cat", "linear"):
        merge_adapters(model, ["a", "b"], ct, [0.5, 0.5])
        out[ct] = float((_dw(model, ct) - avg).norm() / avg.norm())
    return out

def exercise_2()->dict:
    """`dare_linear` at densities 0.5 and 0.9 under three seeds: relative distance of ΔW to `linear`'s.

    DARE drops each entry of A and B with probability 1 - density and rescales the rest by 1/density, so the result
    equals `linear`'s in expectation, with noise that shrinks as density goes to 1 (at density 1 nothing is
    pruned: peft warns and keeps the factors, and the merge is `linear`). On LoRA factors the noise compounds: A and B
    are both pruned, so at density 0.5 the distance is ~1.8 (larger than the update itself), at 0.9 ~0.5 on the tiny
    model. DARE was proposed for full-weight deltas, where one mask is drawn. Returns {density: [distance per seed]}."""
    model = _two_adapters()
    merge_adapters(model, ["a", "b"], "linear")
    ref = _dw(model, "linear")
    out = {}
    for d in (0.5, 0.9):
        out[d] = []
        for seed in range(3):
            name = merge_adapters(model, ["a", "b"], "dare_linear", density=d, adapter_name=f"dare_{int(d * 100)}_{seed}", seed=seed)
            out[d].append(float((_dw(model, name) - ref).norm() / ref.norm()))
    return out

def exercise_3()->dict:
    """Bytes one r=8 all-linear adapter adds against a second copy of the base (float32, the tiny model).

    Every targeted Linear(in, out) gets r·(in + out) parameters. On SmolLM2-135M (30 layers, width 576, k/v 192, MLP 1536;
    q,k,v,o, gate, up, down) that is 81,408 a layer, about 2.4 M parameters, ~1.8% of the base, ~10 MB in float32
    against ~540 MB for a second copy; on the tiny model the share is larger because its embeddings are small. Returns counts and the ratio."""
    prof = get_profile("tiny")
    base = AutoModelForCausalLM.from_pretrained(prof.causal_lm)
    n_base = sum(p.numel() for p in base.parameters())
    m = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    n_lora = sum(p.numel() for n, p in m.named_parameters() if "lora_" in n)
    return dict(base_params=n_base, adapter_params=n_lora, adapter_bytes=4 * n_lora, ratio=n_lora / n_base)
