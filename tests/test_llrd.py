"Layer-wise learning-rate decay, freezing and gradual unfreezing (`ft_course.llrd`)"
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from ft_course.setup import setup_env, get_profile, build_tiny_classifier, build_tiny_causal_lm
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer
from ft_course.llrd import (LLRDConfig, GradualUnfreezing, LayerLRLogger, find_layers, freeze_lower_layers,
                            layer_units, llrd_optimizer, llrd_param_groups)

@pytest.fixture(scope="module")
def tiny():
    setup_env(offline=True)
    prof = get_profile("tiny")
    _, tok = load_classifier(prof)
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    return prof, tok, {"train": data["train"].select(range(64)), "validation": data["validation"]}

def bert(n_layers=3): return AutoModelForSequenceClassification.from_pretrained(build_tiny_classifier(num_hidden_layers=n_layers), num_labels=2)
def llama(**kw): return AutoModelForCausalLM.from_pretrained(build_tiny_causal_lm(**kw))

def one_step(model, tok, data, tmp, **trainer_kw):
    args = make_training_args(tmp, get_profile("tiny"), max_steps=1, warmup_steps=0, lr_scheduler_type="constant",
                              weight_decay=0.0, logging_steps=1, eval_strategy="no", disable_tqdm=True)
    trainer = make_trainer(model, args, data, tok, **trainer_kw)
    trainer.train()
    return trainer

@pytest.mark.parametrize("make, n_layers, prefix", [(lambda: bert(3), 3, "bert."), (lambda: llama(num_hidden_layers=3), 3, "model.")])
def test_group_lrs(make, n_layers, prefix):
    model, base, decay = make(), 1e-3, 0.7
    groups = llrd_param_groups(model, base, decay, weight_decay=0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        assert g["lr"] == pytest.approx(base * decay ** g["depth"])
        for p in g["params"]:
            n = names[id(p)]
            if n.startswith(prefix + ("embeddings" if prefix == "bert." else "embed_tokens")): assert g["depth"] == n_layers + 1, n
            elif ".layers." in n or ".layer." in n:
                i = int(n.split(".layer.")[-1].split(".")[0] if ".layer." in n else n.split(".layers.")[-1].split(".")[0])
                assert g["depth"] == n_layers - i, n
            else: assert g["depth"] == 0, n
            assert g["weight_decay"] == (0.05 if p.ndim >= 2 else 0.0), n
    ps = [p for g in groups for p in g["params"]]
    assert len(ps) == len({id(p) for p in ps}) == len(list(model.parameters()))

@pytest.mark.parametrize("decay", [0.0, -0.5, 1.0001, 2.6])
def test_decay_outside_range_rejected(decay):
    with pytest.raises(ValueError, match="layer_decay"): llrd_param_groups(bert(2), 1e-3, decay)
    with pytest.raises(ValueError, match=r"\(0, 1\]"): LLRDConfig(1e-3, decay)

def test_decay_one_is_plain_finetuning():
    assert {g["lr"] for g in llrd_param_groups(bert(2), 1e-3, 1.0)} == {1e-3}

def test_unsupported_architecture_names_the_paths():
    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0))
    with pytest.raises(ValueError, match="transformer.encoder.layer") as e: find_layers(gpt2)
    assert "transformer.layers" in str(e.value) and "layers_path=" in str(e.value)
    assert len(find_layers(gpt2, layers_path="transformer.h", embeddings_path="transformer.wte").layers) == 2

def test_peft_wrapper_and_tied_weights():
    from peft import LoraConfig, get_peft_model
    m = get_peft_model(bert(2), LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS"))
    assert find_layers(m).paths == ("bert.embeddings", "bert.encoder.layer")
    groups = llrd_param_groups(m, 1e-3, 0.5, trainable_only=True)
    lora_ids = {id(p) for n, p in m.named_parameters() if "lora_" in n}
    lora = {g["name"] for g in groups for p in g["params"] if id(p) in lora_ids}
    assert lora == {"layer 0", "layer 1"}
    assert all(p.requires_grad for g in groups for p in g["params"])
    tied = llama(tie_word_embeddings=True)
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    torch.optim.AdamW(llrd_param_groups(tied, 1e-3, 0.9))       # raises if a parameter were in two groups

def test_trainer_applies_each_groups_lr(tiny, tmp_path):
    "With Adam, the first update of every element is about lr in size: the largest change of each unit must equal its lr"
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    before = {id(p): p.detach().clone() for p in model.parameters()}
    cfg = LLRDConfig(1e-3, 0.5, 0.0)
    trainer = one_step(model, tok, data, str(tmp_path), optimizers=(llrd_optimizer(model, cfg), None),
                       callbacks=[LayerLRLogger()])
    for g in trainer.optimizer.param_groups:
        moved = max((p.detach() - before[id(p)]).abs().max().item() for p in g["params"])
        assert moved == pytest.approx(1e-3 * 0.5 ** g["depth"], rel=0.02), g["name"]
    log = next(r for r in trainer.state.log_history if "lr/head" in r)
    assert log["lr/head"] == pytest.approx(1e-3) and log["lr/embeddings"] == pytest.approx(1e-3 * 0.5**3)

@pytest.mark.parametrize("llrd", [False, True])
def test_frozen_bit_identical_trainable_moved(tiny, llrd, tmp_path):
    "Also when the optimizer holds the frozen parameters (LLRD groups): AdamW's weight decay must not touch them"
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    freeze_lower_layers(model, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    kw = dict(optimizers=(llrd_optimizer(model, LLRDConfig(1e-3, 0.9, 0.1)), None)) if llrd else {}
    one_step(model, tok, data, str(tmp_path), **kw)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("embeddings" in n for n in frozen) and any("layer.0." in n for n in frozen)
    assert not any("layer.1." in n or "classifier" in n for n in frozen)
    for n, p in model.named_parameters():
        if p.requires_grad: assert not torch.equal(p, before[n]), f"{n} did not move"
        else: assert torch.equal(p, before[n]), f"{n} is frozen but changed"

def test_freeze_bounds():
    m = bert(2)
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="use 0..2"): freeze_lower_layers(m, bad)
    n_emb = sum(p.numel() for p in m.bert.embeddings.parameters())
    assert freeze_lower_layers(m, 0) == n_emb and freeze_lower_layers(bert(2), 0, embeddings=False) == 0

def test_gradual_unfreezing(tiny, tmp_path):
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    emb = model.bert.embeddings.word_embeddings.weight.detach().clone()
    top = model.bert.encoder.layer[1].output.dense.weight.detach().clone()
    cb = GradualUnfreezing()
    args = make_training_args(str(tmp_path), prof, num_train_epochs=3, warmup_steps=0, eval_strategy="no", disable_tqdm=True)
    make_trainer(model, args, data, tok, callbacks=[cb], optimizers=(llrd_optimizer(model, LLRDConfig(1e-3, 1.0)), None)).train()
    assert cb.history[-3:] == [["head"], ["head", "layer 1"], ["head", "layer 1", "layer 0"]]
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, emb)
    assert not torch.equal(model.bert.encoder.layer[1].output.dense.weight, top)

def test_gradual_unfreezing_needs_every_parameter_in_the_optimizer(tiny, tmp_path):
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    args = make_training_args(str(tmp_path), prof, max_steps=1, warmup_steps=0, eval_strategy="no", disable_tqdm=True)
    t = make_trainer(model, args, data, tok, callbacks=[GradualUnfreezing()],
                     optimizers=(torch.optim.AdamW(model.classifier.parameters()), None))
    with pytest.raises(ValueError, match="does not hold"): t.train()
    with pytest.raises(ValueError, match="units_per_epoch"): GradualUnfreezing(0)

def test_other_families():
    "DistilBERT (a common swap for the gpu profile's BERT) and a Llama-like Qwen2 classifier (`score` head)"
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, Qwen2Config, Qwen2ForSequenceClassification
    d = DistilBertForSequenceClassification(DistilBertConfig(n_layers=2, dim=32, hidden_dim=64, n_heads=2, vocab_size=100))
    assert find_layers(d).paths == ("distilbert.embeddings", "distilbert.transformer.layer")
    assert {id(m) for m in find_layers(d).head} == {id(d.pre_classifier), id(d.classifier)}
    q = Qwen2ForSequenceClassification(Qwen2Config(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                                   num_key_value_heads=1, vocab_size=100, pad_token_id=0))
    assert {id(m) for m in find_layers(q).head} == {id(q.model.norm), id(q.score)}
    assert [n for n, _ in layer_units(q)] == ["embeddings", "layer 0", "layer 1", "head"]
