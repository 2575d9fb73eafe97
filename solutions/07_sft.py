"""Solutions to the exercises of `07_sft.ipynb`, on the `tiny` profile (tiny Llama, 200 local Alpaca rows).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import tempfile
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling
from trl import SFTTrainer
from ft_course.setup import get_profile
from ft_course.sft import load_instructions, alpaca_to_messages, add_chat_template, make_sft_config, NEFTuneProbe, CHAT_TEMPLATE

def _data(n=216):
    raw = load_instructions("local", n=n)
    return raw.map(alpaca_to_messages, remove_columns=raw.column_names).train_test_split(test_size=16, seed=0)

def _trainer(tok=None, split=None, callbacks=(), **cfg):
    prof = get_profile("tiny")
    tok = tok or add_chat_template(AutoTokenizer.from_pretrained(prof.causal_lm))
    split = split or _data()
    return SFTTrainer(model=AutoModelForCausalLM.from_pretrained(prof.causal_lm), processing_class=tok,
                      train_dataset=split["train"], callbacks=list(callbacks),
                      args=make_sft_config(tempfile.mkdtemp(), prof, disable_tqdm=True, **cfg))

def exercise_1()->dict:
    """Train the tiny model with `assistant_only_loss=False` and compare how many tokens carry a label in the first
    batch. Which of the two runs can learn the role headers, and does that matter?

    With `assistant_only_loss=True` only the answers (and their EOS) carry labels; with `False` every real token
    does, role headers and prompts included (several times more labelled tokens on Alpaca). Only the `False` run
    can learn the headers `<|user|>`/`<|assistant|>`. It does not matter for answering: at inference the chat
    template writes the headers, the model only has to continue after `<|assistant|>`; and spending the loss on
    the prompt teaches the model to imitate users. Returns labelled and real token counts of the first batch."""
    split = _data()
    out = {}
    for aol in (True, False):
        b = next(iter(_trainer(split=split, assistant_only_loss=aol).get_train_dataloader()))
        out[f"assistant_only_loss={aol}"] = dict(labelled=int((b["labels"] != -100).sum()), real_tokens=int(b["attention_mask"].sum()))
    return out

def exercise_2()->dict:
    """Build the tokenizer with `pad_token = eos_token`, train with transformers' `DataCollatorForLanguageModeling(
    mlm=False)` as `data_collator`, and check what fraction of EOS positions have label -100.

    All of them (1.0): that collator sets `labels[labels == pad_token_id] = -100`, and with pad = eos every EOS
    is a "pad". The model never gets a gradient to emit EOS and rambles at inference. TRL's own collator masks
    padding by position: with the same tokenizer, 0% of the real EOS tokens lose their label. (`add_chat_template`
    refuses pad = eos, so the template is set by hand here; the run trains 1 step to show it goes through.)"""
    prof = get_profile("tiny")
    split = _data()
    out = {}
    for name in ("HF DataCollatorForLanguageModeling", "TRL default collator"):
        tok = AutoTokenizer.from_pretrained(prof.causal_lm)
        tok.pad_token = tok.eos_token; tok.chat_template = CHAT_TEMPLATE
        hf = DataCollatorForLanguageModeling(tok, mlm=False)
        # give it what it expects: token ids only (TRL's dataset carries extra columns), truncated like TRL would
        collate = lambda feats: hf([{"input_ids": f["input_ids"][:128]} for f in feats])
        kw = dict(data_collator=collate) if name.startswith("HF") else {}
        prof_tr = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(prof.causal_lm), processing_class=tok,
                             train_dataset=split["train"], **kw,
                             args=make_sft_config(tempfile.mkdtemp(), prof, assistant_only_loss=False, max_steps=1, disable_tqdm=True))
        b = next(iter(prof_tr.get_train_dataloader()))
        real = b["attention_mask"].bool() if "attention_mask" in b else torch.ones_like(b["input_ids"], dtype=torch.bool)
        eos = (b["input_ids"] == tok.eos_token_id) & real
        out[name] = dict(eos_positions=int(eos.sum()), eos_masked_fraction=(b["labels"][eos] == -100).float().mean().item())
        if name.startswith("HF"): prof_tr.train()
    return out

def exercise_3()->dict:
    """Switch `packing_strategy` to `"wrapped"` and repeat the cross-contamination check on one of its batches: are
    there `position_ids`? Is there an attention mask?

    Returns the keys of one batch and whether `position_ids` restart inside a row. With `"wrapped"`, TRL
    concatenates the whole dataset and cuts it into `max_length` chunks (examples are split across rows). Measured:
    the batch is (8, 128) with **no** `position_ids` and an attention mask of all ones, so nothing marks the example
    boundaries: every token attends to the previous examples in its row (cross-contamination), and examples are
    cut mid-answer. `"bfd"` (the default) is padding-free, has no attention mask, and fences the examples with
    `position_ids` that restart at 0 (plus `cu_seq_lens_*` for flash-attention kernels). The wrapped run uses
    `assistant_only_loss=False`: wrapping cuts examples, so the answers-only mask is not meaningful there."""
    split = _data()
    out = {}
    for strategy in ("bfd", "wrapped"):
        b = next(iter(_trainer(split=split, packing=True, packing_strategy=strategy,
                               assistant_only_loss=strategy == "bfd").get_train_dataloader()))
        pos = b.get("position_ids")
        out[strategy] = dict(keys=sorted(b.keys()), shape=tuple(b["input_ids"].shape),
                             has_position_ids=pos is not None, has_attention_mask="attention_mask" in b,
                             attention_mask_all_ones=bool(b["attention_mask"].all()) if "attention_mask" in b else None,
                             restarts_inside_rows=int((pos[:, 1:] == 0).sum()) if pos is not None else 0)
    return out

def exercise_4(alpha:float=5.0, max_steps:int=1)->dict:
    """In the probe's records, how does the NEFTune bound change with sequence length? What does that imply for
    packed (long) rows versus short padded ones?

    The bound is `alpha / sqrt(L * d)`: it falls as 1/sqrt(L), so `bound * sqrt(L)` is the constant
    `alpha / sqrt(d)`. Here `L` is the *padded/packed row* length, not the example's: a packed row of
    `max_length` tokens gets less noise per token than a short padded batch, so the same `alpha` means weaker
    NEFTune with packing (scale alpha by sqrt(L_packed / L_padded) to match). Returns (L, bound) per training pass."""
    split = _data()
    out = {}
    for name, kw in (("padded", {}), ("packed", dict(packing=True))):
        probe = NEFTuneProbe()
        tr = _trainer(split=split, callbacks=[probe], neftune_noise_alpha=alpha, max_steps=max_steps, **kw)
        lengths = []
        h = tr.model.get_input_embeddings().register_forward_hook(lambda m, i, o: lengths.append(o.shape[1]))
        tr.train(); h.remove()
        d = tr.model.config.hidden_size
        recs = [(L, r[2]) for L, r in zip(lengths, probe.records) if r[0]]
        out[name] = dict(records=recs, d=d)
    return out
