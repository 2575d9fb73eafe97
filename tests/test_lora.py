"Tests for ft_course.lora: the from-scratch LoRA against peft, merging, targets, configs and adapters on disk"
import math

import pytest
import torch
from torch import nn
from peft import LoraConfig, PeftModel, get_peft_model

from ft_course.setup import get_profile, seed_everything
from ft_course.train import load_classifier, count_parameters
from ft_course.lora import (ScratchLoraConfig, LoraLinear, lora_scaling, inject_lora, lora_layers, merge_lora, unmerge_lora,
                            copy_lora_to_peft, linear_layer_names, find_target_modules, suggest_target_modules, folder_size_mb,
                            check_lora_targets)

TARGETS = ["query", "key", "value", "output.dense"]

@pytest.fixture(scope="module")
def prof(): return get_profile("tiny")

def _batch(tok):
    return tok(["a gripping and funny film", "dull, far too long, and badly acted", "ok"], return_tensors="pt", padding=True)

def _pair(prof, r=4, lora_alpha=8, use_rslora=False, targets=TARGETS):
    "(ours, peft_model, batch): same base weights and head, random lora_A and lora_B copied into peft"
    seed_everything(1)
    ours, tok = load_classifier(prof)
    inject_lora(ours, ScratchLoraConfig(r=r, lora_alpha=lora_alpha, target_modules=targets, use_rslora=use_rslora,
                                        modules_to_save=["classifier"]))
    for m in lora_layers(ours): nn.init.normal_(m.lora_B.weight, std=0.3); nn.init.normal_(m.lora_A.weight, std=0.3)
    base, _ = load_classifier(prof)
    base.classifier.load_state_dict(ours.classifier.state_dict())
    pm = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=lora_alpha, target_modules=targets,
                                         use_rslora=use_rslora))
    assert copy_lora_to_peft(ours, pm) == len(lora_layers(ours)) > 0
    return ours.eval(), pm.eval(), _batch(tok)

@pytest.mark.parametrize("use_rslora", [False, True])
def test_matches_peft_with_random_A_and_B(prof, use_rslora):
    ours, pm, b = _pair(prof, r=4, lora_alpha=16, use_rslora=use_rslora)
    with torch.no_grad():
        y_ours, y_peft = ours(**b).logits, pm(**b).logits
        with pm.disable_adapter(): y_off = pm(**b).logits
    assert (y_peft - y_off).abs().max() > 1e-2, "the adapters must change the output, or the check proves nothing"
    torch.testing.assert_close(y_ours, y_peft, rtol=1e-5, atol=1e-5)

def test_wrong_scaling_is_caught(prof):
    "The comparison can fail: a model scaled by sqrt(r) differs from peft's alpha/r"
    ours, pm, b = _pair(prof, r=16, lora_alpha=16)
    for m in lora_layers(ours): m.scaling = lora_scaling(16, 16, use_rslora=True)
    with torch.no_grad(): assert (ours(**b).logits - pm(**b).logits).abs().max() > 1e-3

def test_merge_equals_unmerged_and_unmerge_restores(prof):
    ours, _, b = _pair(prof)
    w = {n: p.detach().clone() for n, p in ours.named_parameters() if "base_layer" in n}
    with torch.no_grad():
        y = ours(**b).logits
        merge_lora(ours); assert all(m.merged for m in lora_layers(ours))
        torch.testing.assert_close(ours(**b).logits, y, rtol=1e-5, atol=1e-5)
        merge_lora(ours)                                   # merging twice must not add the update twice
        torch.testing.assert_close(ours(**b).logits, y, rtol=1e-5, atol=1e-5)
        unmerge_lora(ours)
    for n, p in ours.named_parameters():
        if n in w: torch.testing.assert_close(p, w[n], rtol=0, atol=1e-6)

def test_only_adapters_and_modules_to_save_train(prof):
    m, _ = load_classifier(prof)
    inject_lora(m, ScratchLoraConfig(r=2, target_modules=["query", "value"]))
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    assert names and all(n.rsplit(".", 2)[-2] in ("lora_A", "lora_B") for n in names)
    L = m.config.num_hidden_layers
    assert count_parameters(m)[0] == L * 2 * 2 * (m.config.hidden_size * 2)   # layers x targets x (A: r*in + B: out*r)

def test_dropout_only_in_training():
    torch.manual_seed(0)
    lyr = LoraLinear(nn.Linear(8, 8), r=2, lora_dropout=0.5)
    nn.init.normal_(lyr.lora_B.weight)
    x = torch.randn(4, 8)
    lyr.train(); assert not torch.allclose(lyr(x), lyr(x))
    lyr.eval(); torch.testing.assert_close(lyr(x), lyr(x))

def test_lora_linear_errors():
    with pytest.raises(TypeError, match="linear_layer_names"): LoraLinear(nn.Conv1d(2, 2, 1))

@pytest.mark.parametrize("kw,field", [(dict(r=0), "r=0"), (dict(r=2.5), "r=2.5"), (dict(lora_alpha=-1), "lora_alpha"),
                                      (dict(lora_dropout=1.0), "lora_dropout"), (dict(lora_dropout=-0.1), "lora_dropout"),
                                      (dict(target_modules=[]), "suggest_target_modules")])
def test_config_validation(kw, field):
    with pytest.raises(ValueError, match=field): ScratchLoraConfig(**kw)

def test_scaling():
    assert lora_scaling(16, 8) == 2.0
    assert math.isclose(lora_scaling(16, 64, use_rslora=True), 2.0)
    assert ScratchLoraConfig(r=4, lora_alpha=8, use_rslora=True).scaling == 4.0

def test_targets_bert_and_llama(prof):
    from transformers import AutoModelForCausalLM
    bert, _ = load_classifier(prof)
    llama = AutoModelForCausalLM.from_pretrained(prof.causal_lm)
    assert suggest_target_modules(bert) == ["query", "value"]
    assert suggest_target_modules(llama) == ["q_proj", "v_proj"]
    assert "lm_head" not in suggest_target_modules(llama, "all") and "classifier" not in suggest_target_modules(bert, "all")
    assert len(find_target_modules(llama, ["q_proj", "v_proj"])) == 2 * llama.config.num_hidden_layers
    with pytest.raises(ValueError, match="q_proj"): find_target_modules(llama, ["query"])      # lists the candidates
    with pytest.raises(ValueError, match="query"): find_target_modules(bert, ["q_proj"])
    with pytest.raises(ValueError, match="'all'"): suggest_target_modules(bert, "mlp")

def test_fused_W_pack():
    class Attn(nn.Module):
        def __init__(self): super().__init__(); self.W_pack = nn.Linear(8, 24); self.o_proj = nn.Linear(8, 8)
    m = nn.Sequential(Attn(), Attn())
    assert suggest_target_modules(m) == ["W_pack"]
    with pytest.raises(ValueError, match="W_pack"): find_target_modules(m, ["q_proj", "v_proj"])
    inject_lora(m, ScratchLoraConfig(r=2, target_modules=suggest_target_modules(m)))
    assert len(lora_layers(m)) == 2

def test_unknown_architecture_lists_candidates():
    m = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="Candidates|linear layers"): suggest_target_modules(m)

def test_peft_adapter_roundtrip(prof, tmp_path):
    _, pm, b = _pair(prof)
    with torch.no_grad(): y = pm(**b).logits
    pm.save_pretrained(tmp_path/"ad")
    assert (tmp_path/"ad"/"adapter_model.safetensors").exists()
    assert folder_size_mb(tmp_path/"ad"/"adapter_model.safetensors") < folder_size_mb(prof.classifier)
    base, _ = load_classifier(prof)
    loaded = PeftModel.from_pretrained(base, tmp_path/"ad").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**b).logits, y, rtol=1e-5, atol=1e-5)
        merged = loaded.merge_and_unload()
        torch.testing.assert_close(merged(**b).logits, y, rtol=1e-5, atol=1e-5)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with pytest.raises(FileNotFoundError): folder_size_mb(tmp_path/"nope")

def test_no_task_type_leaves_head_frozen(prof):
    "The tutorial mistake: without task_type='SEQ_CLS' nothing trains the new classifier"
    m, _ = load_classifier(prof)
    pm = get_peft_model(m, LoraConfig(r=4, target_modules=["query", "value"]))
    assert not any(p.requires_grad for n, p in pm.named_parameters() if "classifier" in n)
    m2, _ = load_classifier(prof)
    pm2 = get_peft_model(m2, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    assert any(p.requires_grad for n, p in pm2.named_parameters() if "classifier" in n)


def _peft_wrapped(model, targets, **kw):
    "Full names of the layers peft gives a LoRA adapter, or None if get_peft_model refuses the targets"
    try: pm = get_peft_model(model, LoraConfig(r=2, target_modules=targets, **kw))
    except ValueError: return None
    return sorted(n.removeprefix("base_model.model.") for n, m in pm.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer"))

def _scratch_wrapped(model, targets, modules_to_save=()):
    "Full names of the layers inject_lora wraps (through ScratchLoraConfig), or None if it refuses the targets"
    try: inject_lora(model, ScratchLoraConfig(r=2, target_modules=targets, modules_to_save=list(modules_to_save)))
    except ValueError: return None
    return sorted(n for n, m in model.named_modules() if isinstance(m, LoraLinear))

@pytest.mark.parametrize("targets,kw", [(["query", "value"], {}), (r".*\.(query|value)", {}), (r".*layer\.1\..*dense", {}),
                                        ("query", {}), (r".*attention", {}), (["q_proj"], {}),
                                        (["dense"], dict(modules_to_save=["pooler"])), ("all-linear", dict(task_type="SEQ_CLS"))],
                         ids=["suffixes", "regex", "regex-layer1", "bare-query", "regex-non-linear", "wrong-name", "inside-pooler", "all-linear"])
def test_matching_equals_peft(prof, targets, kw):
    "A list is names or dotted suffixes, a str one regex over the whole name: the layers peft adapts, or both refuse"
    mts = kw.get("modules_to_save", ())
    theirs = _peft_wrapped(load_classifier(prof)[0], targets, **kw)
    ours = _scratch_wrapped(load_classifier(prof)[0], targets, mts)
    assert ours == theirs
    try: found = sorted(check_lora_targets(load_classifier(prof)[0], targets, mts))
    except ValueError: found = None
    assert found == ours

def test_regex_string_through_config(prof):
    "A str target stays a regex (it was turned into a one-name list before), and adapts what peft adapts"
    regex = r".*\.(query|value)"
    assert ScratchLoraConfig(target_modules=regex).target_modules == regex
    m, _ = load_classifier(prof)
    inject_lora(m, ScratchLoraConfig(r=2, target_modules=regex))
    ours = sorted(n for n, x in m.named_modules() if isinstance(x, LoraLinear))
    assert len(ours) == 2 * m.config.num_hidden_layers and ours == _peft_wrapped(load_classifier(prof)[0], regex)
    with pytest.raises(ValueError, match="does not compile"): ScratchLoraConfig(target_modules="query(")

def test_all_linear_on_causal_lm_equals_peft(prof):
    from transformers import AutoModelForCausalLM
    lm = lambda: AutoModelForCausalLM.from_pretrained(prof.causal_lm)
    ours = sorted(check_lora_targets(lm(), "all-linear"))
    assert ours == _peft_wrapped(lm(), "all-linear", task_type="CAUSAL_LM") and not any("lm_head" in n for n in ours)

def test_bare_string_says_pass_a_list(prof):
    "'query' as a string is a regex over the whole name: the message says so, and does not list 'query' as a candidate"
    m, _ = load_classifier(prof)
    for bad in (lambda: check_lora_targets(m, "query"), lambda: inject_lora(m, ScratchLoraConfig(target_modules="query"))):
        with pytest.raises(ValueError) as e: bad()
        msg = str(e.value)
        assert "a string is a regex over the whole module name, as in peft" in msg and "pass a list, e.g. ['query']" in msg
        assert "Candidates" not in msg
    assert not lora_layers(m)

def test_modules_to_save_typo_is_refused_before_any_change(prof):
    m, _ = load_classifier(prof)
    with pytest.raises(ValueError) as e:
        inject_lora(m, ScratchLoraConfig(r=2, target_modules=["query", "value"], modules_to_save=["classifer"]))
    msg = str(e.value)
    assert "modules_to_save ['classifer'] match no module" in msg
    assert "Candidates: ['classifier', 'pooler'" in msg          # the heads first
    assert not lora_layers(m) and all(p.requires_grad for p in m.parameters())   # nothing half-applied
    with pytest.raises(ValueError, match=r"pass a list, e.g. \['classifier'\]"): check_lora_targets(m, ["query"], "classifier")
    inject_lora(m, ScratchLoraConfig(r=2, target_modules=["query"], modules_to_save=["classifier"]))
    assert m.classifier.weight.requires_grad

def test_peft_path_helper_lists_candidates(prof):
    "Before get_peft_model: a wrong target names the candidates, which peft's own message does not"
    from transformers import AutoModelForCausalLM
    bert, _ = load_classifier(prof)
    llama = AutoModelForCausalLM.from_pretrained(prof.causal_lm)
    with pytest.raises(ValueError) as e: check_lora_targets(bert, ["q_proj", "v_proj"], ["classifier", "pooler"])
    assert "['q_proj', 'v_proj'] match no linear layer" in str(e.value)
    assert "Candidates (name suffixes): ['classifier', 'dense', 'key', 'query', 'value']" in str(e.value)
    with pytest.raises(ValueError) as e: check_lora_targets(llama, ["query", "value"])
    assert "'q_proj'" in str(e.value) and "'v_proj'" in str(e.value)
    with pytest.raises(ValueError) as e: get_peft_model(load_classifier(prof)[0], LoraConfig(target_modules=["q_proj"]))
    assert "query" not in str(e.value)                            # peft's own message: no candidates (why the helper exists)
    with pytest.raises(ValueError, match=r"full names look like 'bert\.encoder.*Candidates"): check_lora_targets(bert, r".*\.q_proj")
    # stricter than peft on purpose: peft adapts `query` alone for a list with one misspelt name
    assert len(_peft_wrapped(load_classifier(prof)[0], ["query", "valeu"])) == bert.config.num_hidden_layers
    with pytest.raises(ValueError, match=r"\['valeu'\] match no linear layer"): check_lora_targets(bert, ["query", "valeu"])
    with pytest.raises(ValueError, match="not nn.Linear"): check_lora_targets(bert, r".*attention.*")
    assert check_lora_targets(bert, ["query", "value"], ["classifier", "pooler"]) == find_target_modules(bert, ["query", "value"])
