"Prompt tuning: the from-scratch wrapper against peft, error paths, and what peft trains for SEQ_CLS"
import warnings
import pytest, torch
from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ft_course.setup import build_tiny_causal_lm, build_tiny_classifier
from ft_course.prompt_tuning import SoftPromptConfig, SoftPromptModel, prepend_prompt, text_init_ids

N = 6

@pytest.fixture(scope="module")
def cls_path(): return build_tiny_classifier()

@pytest.fixture(scope="module")
def lm_path(): return build_tiny_causal_lm()

def _pair(path, task, auto, seed=0, **peft_kw):
    "(peft model, our model) on identical weights, sharing one random (not zero) prompt"
    peft_model = get_peft_model(auto.from_pretrained(path, **peft_kw), PromptTuningConfig(
        task_type=task, num_virtual_tokens=N, prompt_tuning_init=PromptTuningInit.RANDOM)).eval()
    ours = SoftPromptModel(auto.from_pretrained(path, **peft_kw), SoftPromptConfig(N, task.value)).eval()
    if task == TaskType.SEQ_CLS:   # peft trains a copy of the head (modules_to_save): copy that one
        ours.model.classifier.load_state_dict(peft_model.get_base_model().classifier.modules_to_save["default"].state_dict())
    g = torch.Generator().manual_seed(seed)
    P = torch.randn(N, ours.model.config.hidden_size, generator=g) * 0.3
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(P)
        ours.prompt_embeddings.copy_(P)
    return peft_model, ours

def _random_batch(vocab, pad_id, B=4, T=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    mask = torch.ones_like(ids)
    for b in range(1, B): mask[b, T - 2*b:] = 0          # rows with different amounts of right padding
    return ids.masked_fill(mask == 0, pad_id), mask

@pytest.mark.parametrize("seed", [0, 1])
def test_seq_cls_logits_match_peft(cls_path, seed):
    tok = AutoTokenizer.from_pretrained(cls_path)
    peft_model, ours = _pair(cls_path, TaskType.SEQ_CLS, AutoModelForSequenceClassification, seed)
    ids, mask = _random_batch(len(tok), tok.pad_token_id, seed=seed)
    tt = torch.randint(0, 2, ids.shape, generator=torch.Generator().manual_seed(seed))
    kw = dict(input_ids=ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
    with torch.no_grad():
        a, b = peft_model(**kw), ours(**kw)
        ours.prompt_embeddings[0] += torch.randn(ours.prompt_embeddings.shape[1]) # another prompt must change the outputs
        # (random, not a constant: BERT's embedding LayerNorm removes a constant shift)
        c = ours(**kw)
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.hidden_states[-1], a.hidden_states[-1], rtol=1e-5, atol=1e-5)   # every position
    assert (c.logits - a.logits).abs().max() > 1e-4 and (c.hidden_states[-1] - a.hidden_states[-1])[:, N:].abs().max() > 1e-3

def test_causal_lm_logits_and_loss_match_peft(lm_path):
    tok = AutoTokenizer.from_pretrained(lm_path)
    peft_model, ours = _pair(lm_path, TaskType.CAUSAL_LM, AutoModelForCausalLM)
    ids, mask = _random_batch(len(tok), tok.pad_token_id)
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        a = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
        b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert b.logits.shape == (ids.shape[0], N + ids.shape[1], len(tok))
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.loss, a.loss, rtol=1e-6, atol=1e-6)

def test_generate_peft_and_ours(lm_path):
    tok = AutoTokenizer.from_pretrained(lm_path)
    peft_model, ours = _pair(lm_path, TaskType.CAUSAL_LM, AutoModelForCausalLM, seed=3)
    start = tok(["the film is"], return_tensors="pt")
    kw = dict(max_new_tokens=7, min_new_tokens=7, do_sample=False, pad_token_id=tok.pad_token_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g_peft = peft_model.generate(**start, **kw)
    g_ours = ours.generate(**start, **kw)
    assert g_peft.shape == (1, start.input_ids.shape[1] + 7)            # peft returns input + new tokens
    assert torch.equal(g_peft[:, :start.input_ids.shape[1]], start.input_ids)
    assert torch.equal(g_peft[:, start.input_ids.shape[1]:], g_ours)   # ours returns only the new ones

def test_prepend_prompt_labels_and_masks():
    P, x = torch.randn(3, 4), torch.randn(2, 5, 4)
    o = prepend_prompt(P, x, torch.ones(2, 5, dtype=torch.long), torch.arange(10).view(2, 5), causal_lm=True)
    assert o["labels"][:, :3].eq(-100).all() and torch.equal(o["labels"][:, 3:], torch.arange(10).view(2, 5))
    assert o["attention_mask"].shape == (2, 8) and o["attention_mask"].all()
    assert torch.equal(prepend_prompt(P, x, labels=torch.tensor([1, 0]))["labels"], torch.tensor([1, 0]))

@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_config_rejects_bad_num_virtual_tokens(bad):
    with pytest.raises(ValueError, match="num_virtual_tokens"): SoftPromptConfig(num_virtual_tokens=bad)

def test_config_errors(cls_path):
    with pytest.raises(ValueError, match="CAUSAL_LM"): SoftPromptConfig(task_type="causal_lm")
    with pytest.raises(ValueError, match="prompt_tuning_init_text"): SoftPromptConfig(prompt_tuning_init="TEXT")
    with pytest.raises(ValueError, match="RANDOM"): SoftPromptConfig(prompt_tuning_init="SAMPLE")
    cfg = SoftPromptConfig(4, prompt_tuning_init="TEXT", prompt_tuning_init_text="great film")
    with pytest.raises(ValueError, match="tokenizer"):
        SoftPromptModel(AutoModelForSequenceClassification.from_pretrained(cls_path), cfg)

def test_text_init_copies_embeddings(cls_path):
    tok = AutoTokenizer.from_pretrained(cls_path)
    cfg = SoftPromptConfig(7, prompt_tuning_init="TEXT", prompt_tuning_init_text="a good film")
    m = SoftPromptModel(AutoModelForSequenceClassification.from_pretrained(cls_path), cfg, tok)
    ids = text_init_ids(tok, "a good film", 7)
    assert ids[0] == tok.cls_token_id and len(ids) == 7
    torch.testing.assert_close(m.prompt_embeddings.data, m.model.get_input_embeddings().weight[ids])
    with pytest.raises(ValueError, match="non-empty"): text_init_ids(lambda t: {"input_ids": []}, "", 3)

def test_guards(cls_path, lm_path):
    m = SoftPromptModel(AutoModelForSequenceClassification.from_pretrained(cls_path), SoftPromptConfig(N))
    limit = m.model.config.max_position_embeddings
    with pytest.raises(ValueError, match=f"max_length={limit - N}"): m(input_ids=torch.ones(1, limit - N + 1, dtype=torch.long))
    m(input_ids=torch.ones(1, limit - N, dtype=torch.long))             # exactly at the limit works
    with pytest.raises(ValueError, match="position_ids"): m(input_ids=torch.ones(1, 4, dtype=torch.long), position_ids=torch.arange(4)[None])
    with pytest.raises(ValueError, match="CAUSAL_LM"): m.generate(torch.ones(1, 4, dtype=torch.long))

def test_only_prompt_and_head_get_gradients(cls_path):
    m = SoftPromptModel(AutoModelForSequenceClassification.from_pretrained(cls_path), SoftPromptConfig(N))
    m(input_ids=torch.randint(5, 100, (2, 6)), labels=torch.tensor([0, 1])).loss.backward()
    with_grad = {n for n, p in m.named_parameters() if p.grad is not None}
    assert with_grad == {"prompt_embeddings", "model.classifier.weight", "model.classifier.bias"}
    lm = SoftPromptModel(AutoModelForCausalLM.from_pretrained(build_tiny_causal_lm()), SoftPromptConfig(N, "CAUSAL_LM"))
    assert [n for n, p in lm.named_parameters() if p.requires_grad] == ["prompt_embeddings"]

def test_peft_seq_cls_trains_head_not_pooler(cls_path):
    "Regression guard for what the notebook says peft 0.21.2 does for SEQ_CLS prompt tuning"
    def trainable(**kw):
        pm = get_peft_model(AutoModelForSequenceClassification.from_pretrained(cls_path),
                            PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=N, **kw))
        return {n for n, p in pm.named_parameters() if p.requires_grad}
    default = trainable()
    assert "prompt_encoder.default.embedding.weight" in default
    assert any(".classifier.modules_to_save.default." in n for n in default)
    assert not any("pooler" in n for n in default)
    assert any("pooler.modules_to_save.default.dense" in n for n in trainable(modules_to_save=["pooler"]))

def test_left_padded_batch_generates_like_single_examples(lm_path):
    "peft drops generate's position_ids for prompt tuning; a left-padded batch must still match one-at-a-time"
    tok = AutoTokenizer.from_pretrained(lm_path, padding_side="left")
    peft_model, ours = _pair(lm_path, TaskType.CAUSAL_LM, AutoModelForCausalLM, seed=5)
    texts = ["the film is really good and", "a story"]
    kw = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    batch = tok(texts, padding=True, return_tensors="pt")
    assert (batch.attention_mask == 0).any()                            # the batch really is padded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g_peft = peft_model.generate(**batch, **kw)[:, batch.input_ids.shape[1]:]
    g_ours = ours.generate(**batch, **kw)
    one = torch.cat([ours.generate(**tok([t], return_tensors="pt"), **kw) for t in texts])
    assert torch.equal(g_peft, g_ours) and torch.equal(g_ours, one)
