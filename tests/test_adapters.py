"""ft_course.adapters: the error paths (no adapters, a base that is already a PeftModel, adapters of different ranks, a
missing layer, a pruning merge without density, a task the adapter did not improve), and the stored cpu study read
back the way the notebook reads it (every merge scored on both tasks, the verdicts recomputed from the scores)."""
from pathlib import Path

import pandas as pd
import pytest, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from ft_course.setup import get_profile
from ft_course.adapters import (MARGINS, MERGES, adapter_factors, gain_kept, keeps, linear_merge_factors, load_adapters,
                                merge_adapters)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    "Two saved random adapters of the tiny causal LM, of ranks 4 and 8"
    prof, root = get_profile("tiny"), tmp_path_factory.mktemp("adapters")
    out = {}
    for name, r in (("a", 4), ("b", 8)):
        torch.manual_seed(r)
        m = get_peft_model(AutoModelForCausalLM.from_pretrained(prof.causal_lm),
                           LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"))
        m.save_pretrained(root/name)
        out[name] = root/name
    return prof, out


def test_load_adapters_refuses_bad_input(saved):
    prof, paths = saved
    base = AutoModelForCausalLM.from_pretrained(prof.causal_lm)
    with pytest.raises(ValueError, match="adapters is empty"): load_adapters(base, {})
    model = load_adapters(base, paths)
    assert model.active_adapter == "a" and sorted(model.peft_config) == ["a", "b"]
    with pytest.raises(ValueError, match="already a PeftModel"): load_adapters(model, paths)
    with pytest.raises(ValueError, match="No LoRA layer ending in 'no_such_proj'"): adapter_factors(model, "a", "no_such_proj")


def test_merges_of_different_ranks(saved):
    prof, paths = saved
    model = load_adapters(AutoModelForCausalLM.from_pretrained(prof.causal_lm), paths)
    (A1, B1, s1), (A2, B2, s2) = (adapter_factors(model, n, "layers.0.self_attn.q_proj") for n in ("a", "b"))
    with pytest.raises(ValueError, match="use combination_type='cat'"): linear_merge_factors([A1, A2], [B1, B2], [1, 1], [s1, s2])
    with pytest.raises(ValueError, match="one A, B, weight and scaling"): linear_merge_factors([A1], [B1, B2], [1], [s1])
    with pytest.raises(ValueError, match="pass density"): merge_adapters(model, ["a", "b"], "dare_linear")
    merge_adapters(model, ["a", "b"], "cat", [0.5, 0.5])          # cat takes different ranks: rank 4 + 8
    Ac, Bc, sc = adapter_factors(model, "cat", "layers.0.self_attn.q_proj")
    assert Ac.shape[0] == 12 and sc == 1.0
    torch.testing.assert_close(sc * Bc @ Ac, 0.5 * s1 * B1 @ A1 + 0.5 * s2 * B2 @ A2, atol=1e-5, rtol=1e-4)


def test_verdicts():
    with pytest.raises(ValueError, match="gained nothing"): gain_kept(0.8, 0.7, 0.7)
    own = dict(sst2_accuracy=0.8, alpaca_loss=2.0)
    edge = dict(sst2_accuracy=0.8 - MARGINS["sst2_accuracy"] + 1e-9, alpaca_loss=2.0 * (1 + MARGINS["alpaca_loss"]) - 1e-9)
    assert keeps(edge, own) == dict(keeps_sst2=True, keeps_alpaca=True)
    past = dict(sst2_accuracy=0.8 - MARGINS["sst2_accuracy"] - 1e-3, alpaca_loss=2.0 * (1 + MARGINS["alpaca_loss"]) + 1e-3)
    assert keeps(past, own) == dict(keeps_sst2=False, keeps_alpaca=False)


def test_stored_cpu_study():
    "The stored study has every merge of MERGES, and its keeps_* columns follow from its scores and MARGINS"
    cpu = pd.read_csv(ROOT/"bench"/"results"/"adapters_cpu.csv")
    assert list(cpu.model) == ["base", "adapter sst2", "adapter alpaca", *(f"merge {m}" for m in MERGES)]
    own = dict(sst2_accuracy=cpu.sst2_accuracy[1], alpaca_loss=cpu.alpaca_loss[2])
    for _, r in cpu.iterrows(): assert keeps(r, own) == dict(keeps_sst2=r.keeps_sst2, keeps_alpaca=r.keeps_alpaca), r.model
    assert cpu.sst2_accuracy[1] > cpu.sst2_accuracy[0] and cpu.alpaca_loss[2] < cpu.alpaca_loss[0]   # each adapter learned its task
    assert "python bench/adapters_cpu.py" in (ROOT/"bench"/"results"/"adapters_cpu.md").read_text()
