"Instruction tuning (ft_course.sft): converters, chat template masks, old-API errors, NEFTune, packing, adapters"
import math

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from ft_course.setup import build_tiny_causal_lm, get_profile, setup_env
from ft_course.sft import (CHAT_TEMPLATE, NEFTuneProbe, add_chat_template, alpaca_to_messages,
                           alpaca_to_prompt_completion, batch_padding_fraction, check_pad_token, generate,
                           load_instructions, make_sft_config, neftune_noise)

FAST = dict(max_length=64, per_device_train_batch_size=4, max_steps=2, logging_steps=1, disable_tqdm=True)

@pytest.fixture(scope="module")
def prof():
    setup_env(offline=True)
    return get_profile("tiny")

@pytest.fixture(scope="module")
def path(): return build_tiny_causal_lm()

@pytest.fixture(scope="module")
def tok(path): return add_chat_template(AutoTokenizer.from_pretrained(path))

@pytest.fixture(scope="module")
def chats():
    rows = [{"instruction": f"Say the number {i}.", "input": "" if i % 2 else f"context {i}", "output": f"The number is {i}."}
            for i in range(24)]
    return Dataset.from_list(rows).map(alpaca_to_messages, remove_columns=["instruction", "input", "output"])

def test_converters():
    row = {"instruction": " Translate. ", "input": "", "output": "Bonjour "}
    m = alpaca_to_messages(row)["messages"]
    assert [x["role"] for x in m] == ["user", "assistant"] and m[0]["content"] == "Translate." and m[1]["content"] == "Bonjour"
    pc = alpaca_to_prompt_completion(row | {"input": "Hello"})
    assert pc["prompt"] == [{"role": "user", "content": "Translate.\n\nHello"}]
    assert alpaca_to_prompt_completion(row, conversational=False)["prompt"].endswith("### Response:\n")

def test_local_alpaca_columns():
    ds = load_instructions("local", n=5)
    assert ds.column_names == ["instruction", "input", "output"] and len(ds) == 5
    with pytest.raises(ValueError, match="'local' or 'hub'"): load_instructions("s3")

def test_assistant_mask_covers_answer_and_eos_only(tok):
    msgs = alpaca_to_messages({"instruction": "Name a colour.", "input": "", "output": "Blue"})["messages"]
    enc = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    trained = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained, skip_special_tokens=True) == "Blue"
    assert enc["input_ids"].count(tok.bos_token_id) == 1          # the template adds BOS once, not twice

def test_pad_and_template_guards(path):
    t = AutoTokenizer.from_pretrained(path); t.pad_token = t.eos_token
    with pytest.raises(ValueError, match="own pad token"): check_pad_token(t)
    t = AutoTokenizer.from_pretrained(path)
    with pytest.raises(ValueError, match="generation"): add_chat_template(t, template="{{ messages }}")
    t.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert add_chat_template(t).chat_template != CHAT_TEMPLATE              # an existing template is kept...
    assert add_chat_template(t, overwrite=True).chat_template == CHAT_TEMPLATE  # ...unless asked

def test_trl_rejects_template_without_generation_markers(path, chats, prof, tmp_path):
    t = AutoTokenizer.from_pretrained(path)
    t.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
    with pytest.raises(ValueError, match="not training-compatible"):
        SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), processing_class=t, train_dataset=chats,
                   args=make_sft_config(str(tmp_path), prof, **FAST))

def test_old_api_fails(path, tok, chats, prof, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(path)
    with pytest.raises(TypeError, match="tokenizer"):
        SFTTrainer(model=model, tokenizer=tok, train_dataset=chats, dataset_text_field="text")
    with pytest.raises(TypeError, match="max_seq_length"): SFTConfig(str(tmp_path), max_seq_length=128)
    with pytest.raises(ValueError, match="use max_length"): make_sft_config(str(tmp_path), prof, max_seq_length=128)
    with pytest.raises(ValueError, match="processing_class"): make_sft_config(str(tmp_path), prof, tokenizer=tok)

def test_sft_config_shares_the_training_defaults(prof, tmp_path):
    "make_sft_config (07) and make_training_args (02) read one TRAINING_DEFAULTS and one device_kwargs; sizes come from Profile.sft"
    from ft_course.train import TRAINING_DEFAULTS, device_kwargs, make_training_args
    sft, ta = make_sft_config(str(tmp_path), prof), make_training_args(str(tmp_path), prof)
    for k in TRAINING_DEFAULTS: assert getattr(sft, k) == getattr(ta, k), k
    for k, v in device_kwargs(prof).items(): assert getattr(sft, k) == getattr(ta, k) == v, k   # SFTConfig's own bf16 default is off
    for k, v in prof.sft_kwargs().items(): assert getattr(sft, k) == v, k
    assert make_sft_config(str(tmp_path), prof, max_steps=3).max_steps == 3                        # overrides win

def test_neftune_noise_scale():
    x = torch.randn(3, 10, 32)
    d = neftune_noise(x, 5.0) - x
    assert 0 < d.abs().max() <= 5.0 / math.sqrt(10 * 32) + 1e-6
    assert d.abs().max() > 0.5 * 5.0 / math.sqrt(10 * 32)              # uniform: the max gets close to the bound

@pytest.mark.parametrize("alpha", [5.0, None])
def test_neftune_noises_training_not_eval(path, tok, chats, alpha, prof, tmp_path):
    "Embeddings are noised in training-mode forwards and untouched in eval-mode forwards (and never without alpha)"
    probe = NEFTuneProbe()
    tr = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), processing_class=tok, train_dataset=chats,
                    eval_dataset=chats.select(range(4)), callbacks=[probe],
                    args=make_sft_config(str(tmp_path), prof, neftune_noise_alpha=alpha,
                                         eval_strategy="steps", eval_steps=1, **FAST))
    tr.train()
    train = [r for r in probe.records if r[0]]; ev = [r for r in probe.records if not r[0]]
    assert len(train) == 2 and len(ev) >= 2
    assert all(n == 0.0 for _, n, _ in ev)
    if alpha: assert all(0 < n <= b + 1e-6 for _, n, b in train)
    else: assert all(n == 0.0 for _, n, _ in train)
    assert probe._handle is None                                       # the probe cleaned up after itself

def test_packing_removes_padding_without_contamination(path, tok, chats, prof, tmp_path):
    def stats(**kw):
        return batch_padding_fraction(SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), processing_class=tok,
                                                 train_dataset=chats, args=make_sft_config(str(tmp_path), prof,
                                                                                          **(FAST | dict(max_length=128) | kw))))
    padded, packed = stats(), stats(packing=True)
    assert padded["padding_fraction"] > 0 and packed["padding_fraction"] == 0
    assert packed["real_tokens"] == padded["real_tokens"] and packed["examples"] == padded["examples"] == len(chats)
    assert packed["batches"] < padded["batches"]                       # several examples share a packed row
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    a, b = tok("one two three", return_tensors="pt").input_ids, tok("four five", return_tensors="pt").input_ids
    pos = torch.cat([torch.arange(a.shape[1]), torch.arange(b.shape[1])])[None]
    with torch.no_grad():
        alone = lm(b, use_cache=False).logits
        fenced = lm(torch.cat([a, b], 1), position_ids=pos, use_cache=False).logits[:, a.shape[1]:]
        leaky = lm(torch.cat([a, b], 1), use_cache=False).logits[:, a.shape[1]:]
    torch.testing.assert_close(fenced, alone, atol=1e-5, rtol=0)
    assert (leaky - alone).abs().max() > 1e-2

def test_lora_merge_reload_same_output(path, tok, chats, prof, tmp_path):
    from peft import LoraConfig, PeftModel
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    tr = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), processing_class=tok, train_dataset=chats,
                    peft_config=cfg, args=make_sft_config(str(tmp_path/"run"), prof, **(FAST | dict(learning_rate=5e-2))))
    tr.train()
    model = tr.model.eval()
    x = tok("Say the number 3.", return_tensors="pt").input_ids
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(path).eval()(x).logits
        tuned = model(x).logits
    assert (tuned - base).abs().max() > 1e-3                           # the adapter changed the model
    want = generate(model, tok, ["Say the number 3."], max_new_tokens=8)
    model.save_pretrained(tmp_path/"adapter")
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), tmp_path/"adapter")
    assert generate(reloaded, tok, ["Say the number 3."], max_new_tokens=8) == want
    model.merge_and_unload().save_pretrained(tmp_path/"merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path/"merged").eval()
    with torch.no_grad(): torch.testing.assert_close(merged(x).logits, tuned, atol=1e-4, rtol=1e-4)
    assert generate(merged, tok, ["Say the number 3."], max_new_tokens=8) == want

def test_qlora_adapters_train_on_cpu(path, tok, chats, prof, tmp_path):
    "4-bit base + LoRA: with the AVX512-BF16 repacking switched off, every lora_B leaves zero"
    bnb = pytest.importorskip("bitsandbytes")
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    q = AutoModelForCausalLM.from_pretrained(path, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    layers = [m for m in q.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for m in layers: m.support_avx512bf16_for_cpu = False
    tr = SFTTrainer(model=q, processing_class=tok, train_dataset=chats,
                    peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
                    args=make_sft_config(str(tmp_path), prof, **(FAST | dict(learning_rate=1e-2))))
    tr.train()
    lora_B = [p for n, p in tr.model.named_parameters() if "lora_B" in n]
    assert len(lora_B) == len(layers) > 0
    assert all(p.detach().abs().sum() > 0 for p in lora_B)


# --- pad = eos, SmolLM2's ChatML template, prompts longer than max_length ---------------------------------------------

from ft_course.sft import CHATML_TEMPLATE, check_prompt_lengths, fix_pad_token

CHATML_NO_MARKERS = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                     "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
                     "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                     "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

@pytest.fixture
def chatml_tok(path):
    "The tiny tokenizer dressed as SmolLM2's: ChatML special tokens, pad = eos = <|im_end|>, its template without markers"
    t = AutoTokenizer.from_pretrained(path)
    t.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]})
    t.eos_token = t.pad_token = "<|im_end|>"
    t.chat_template = CHATML_NO_MARKERS
    return t

def test_pad_equal_to_eos_is_refused_then_fixed(chatml_tok):
    with pytest.raises(ValueError, match="fix_pad_token"): add_chat_template(chatml_tok)
    fix_pad_token(chatml_tok)
    assert chatml_tok.pad_token == "<|endoftext|>" and chatml_tok.pad_token_id != chatml_tok.eos_token_id
    check_pad_token(chatml_tok)

def test_fix_pad_token_without_a_spare_token_says_what_to_do(path):
    t = AutoTokenizer.from_pretrained(path); t.pad_token = t.eos_token
    with pytest.raises(ValueError, match="resize_token_embeddings"): fix_pad_token(t, candidates=("<nope>",))

def test_chatml_gets_markers_and_renders_the_same_text(chatml_tok):
    msgs = alpaca_to_messages({"instruction": "Name a colour.", "input": "", "output": "Blue"})["messages"]
    own = chatml_tok.apply_chat_template(msgs, tokenize=False)
    add_chat_template(fix_pad_token(chatml_tok))
    assert chatml_tok.chat_template == CHATML_TEMPLATE
    assert chatml_tok.apply_chat_template(msgs, tokenize=False) == own                 # byte-identical text
    enc = chatml_tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    trained = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert chatml_tok.eos_token_id in trained                                         # the model learns to stop
    assert "Blue" in chatml_tok.decode(trained) and "Name a colour" not in chatml_tok.decode(trained)

def test_add_generation_prompt_is_not_a_marker(chatml_tok):
    "The words 'add_generation_prompt' in a template are not a {% generation %} block"
    fix_pad_token(chatml_tok)
    with pytest.raises(ValueError, match="generation"): add_chat_template(chatml_tok, template=CHATML_NO_MARKERS, overwrite=True)

def test_prompt_longer_than_max_length_is_a_clear_error(tok):
    rows = [{"instruction": "Summarise.", "input": "word " * 200, "output": "Short."},
            {"instruction": "Say hi.", "input": "", "output": "Hi."}]
    ds = Dataset.from_list(rows).map(alpaca_to_messages, remove_columns=["instruction", "input", "output"])
    with pytest.raises(ValueError, match=r"1 of 2 examples \(rows \[0\]\).*Raise max_length above"):
        check_prompt_lengths(ds, tok, 64)
    r = check_prompt_lengths(ds, tok, 64, raise_error=False)
    assert r["prompt_too_long"] == [0] and r["examples"] == 2
    assert check_prompt_lengths(ds, tok, 4096)["prompt_too_long"] == []
