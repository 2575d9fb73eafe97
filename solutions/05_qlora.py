"""Solutions to the exercises of `05_qlora.ipynb`, on the `tiny` profile (exercise 4 uses the tiny BERT classifier
instead of MiniLM; exercise 3 needs a CPU with AVX512-BF16, where the trap exists).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import dataclasses, tempfile, warnings
import numpy as np
import torch
from ft_course.setup import get_profile
from ft_course.qlora import nf4_code, quantization_error, bits_per_param, load_4bit, guard_cpu_4bit

def exercise_1(n:int=4096, blocksizes=(32, 64, 256, 4096), plot:bool=False)->dict:
    """Quantise `torch.randn(4096, 4096) * 0.02` with blocksizes 32, 64, 256 and 4096. Plot RMS error against
    bits per parameter (`bits_per_param`). Where is the knee?

    Returns {blocksize: (bits per parameter, RMS error)}. Error saved per extra bit: 4096 -> 256 costs 0.12 bits
    and buys the most; 256 -> 64 costs 0.375 bits and buys ~5x less per bit; 64 -> 32 costs 0.5 bits for ~2x less
    again. The knee is around blocksize 64-256: QLoRA's 64 (with double quantisation bringing its cost from 4.5 to 4.127
    bits) sits right there."""
    torch.manual_seed(0)
    W = torch.randn(n, n) * 0.02
    code = nf4_code()
    res = {b: (bits_per_param(b), quantization_error(W, code, b).pow(2).mean().sqrt().item()) for b in blocksizes}
    if plot:
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([v[0] for v in res.values()], [v[1] for v in res.values()], "o-")
        for b, (x, y) in res.items(): ax.annotate(str(b), (x, y))
        ax.set(xlabel="bits per parameter", ylabel="RMS error", title="NF4: block size trade-off")
    return res

def exercise_2(n:int=1024, blocksize:int=64)->dict:
    """Add one outlier (`W[0, 0] = 1.0`) to `W` and compare the NF4 error of its block with and without the
    outlier. Why do LLM.int8 and later methods treat outlier features separately?

    The block's `absmax` jumps from ~0.05 to 1.0 (50x), so every other value in the block is scaled into a tiny
    slice around 0 where NF4 has only its few central codes: most round to 0 and the block's RMS error grows by
    an order of magnitude. Blockwise scaling limits the damage to one block, but outlier *features* (whole
    columns, Dettmers et al. 2022) hit one value in every row's block, so LLM.int8 keeps them in 16-bit."""
    torch.manual_seed(0)
    W = torch.randn(n, n) * 0.02
    code = nf4_code()
    def block_rms(W): return quantization_error(W, code, blocksize).reshape(-1, blocksize)[0, 1:].pow(2).mean().sqrt().item()
    W2 = W.clone(); W2[0, 0] = 1.0
    def zeros(W):   # share of the block's other values whose dequantised value is exactly 0
        deq = W + quantization_error(W, code, blocksize)
        return (deq.reshape(-1, blocksize)[0, 1:] == 0).float().mean().item()
    return dict(rms_without=block_rms(W), rms_with=block_rms(W2), share_rounded_to_zero_with=zeros(W2),
                share_rounded_to_zero_without=zeros(W))

def exercise_3(steps:int=6, eval_steps:int=2)->dict:
    """Remove the guard (`load_4bit(..., guard=False)`), train with `eval_strategy="steps"`, and find the first step
    where `grad_norm` is 0.0 in `log_frame(trainer)`.

    On a CPU with AVX512-BF16 the first evaluation repacks the 4-bit weights; from the next training step on the
    LoRA layers are cut from the graph: `grad_norm` is 0.0 from step `eval_steps + 1` (the first step after the
    first evaluation) and stays 0, while the loss stops moving; with the guard it never is. Returns the first zero
    step and the grad norms of each run. (Short sentences and 8-row batches, as in `tests/test_qlora.py`.)"""
    from datasets import Dataset, DatasetDict
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling
    from ft_course.train import make_training_args, make_trainer, log_frame
    prof = get_profile("tiny")
    tok = AutoTokenizer.from_pretrained(prof.causal_lm)
    texts = [f"the film is {w} and the cast is {v}" for w in ("good", "dull", "great", "bad") for v in ("fine", "weak")] * 4
    ds = Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])
    data = DatasetDict(train=ds, validation=ds.select(range(8)))
    out = {}
    for guard in (False, True):
        base = prepare_model_for_kbit_training(load_4bit(prof.causal_lm, guard=guard), use_gradient_checkpointing=False)
        pm = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        args = make_training_args(tempfile.mkdtemp(), prof, learning_rate=1e-2, max_steps=steps, per_device_train_batch_size=8,
                                  per_device_eval_batch_size=8, warmup_steps=0, eval_strategy="steps", eval_steps=eval_steps,
                                  logging_steps=1, disable_tqdm=True)
        tr = make_trainer(pm, args, data, tok, data_collator=DataCollatorForLanguageModeling(tok, mlm=False), compute_metrics=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore"); tr.train()
        log = log_frame(tr)[0]
        zero = log.index[log["grad_norm"] == 0.0]
        out["guarded" if guard else "unguarded"] = dict(first_zero_step=int(zero[0]) if len(zero) else None,
                                                       grad_norm=log["grad_norm"].round(4).tolist())
    return out

def exercise_4(train_steps:int=8)->dict:
    """Train the MiniLM classifier in 4-bit with `task="seq_cls"` and `modules_to_save=["classifier", "pooler"]`,
    then merge the adapter all three ways and compare dev accuracy, not just logits.

    Solved on the tiny BERT classifier (the same code runs on `minilm_path()`). Measured against the unmerged 4-bit
    model: merging into the *dequantised* weights is exact (1e-8, float rounding); merging into the *original*
    fp32 weights differs by the quantisation error the adapter was trained around (2e-4 max |logit| here);
    merging into 4-bit re-quantises `W + BA` (another rounding, also 2e-4). No prediction flips on the 128 dev
    rows, so the dev accuracy is identical all three ways; on MiniLM the same holds to within a prediction or
    two. Logit differences this small rarely flip an argmax, which is why the accuracy, not the logits, is the
    test that matters. Returns accuracy, max |logit difference| and flipped predictions per merge."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForSequenceClassification
    from ft_course.data import load_profile_data, tokenize
    from ft_course.train import make_training_args, make_trainer, load_classifier
    prof = dataclasses.replace(get_profile("tiny"), n_train=128)
    _, tok = load_classifier(prof)
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    base = prepare_model_for_kbit_training(load_4bit(prof.classifier, task="seq_cls"), use_gradient_checkpointing=False)
    pm = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"],
                                         modules_to_save=["classifier", "pooler"]))
    args = make_training_args(tempfile.mkdtemp(), prof, max_steps=train_steps, eval_strategy="no", disable_tqdm=True)
    make_trainer(pm, args, data, tok).train()
    d = tempfile.mkdtemp(); pm.save_pretrained(d)
    val = data["validation"]
    batch = tok.pad({k: list(val[k]) for k in val.column_names if k != "label"}, return_tensors="pt")
    labels = np.array(list(val["label"]))
    def acc_logits(m):
        m.eval()
        with torch.no_grad(): lg = m(**batch).logits.float()
        return float((lg.argmax(-1).numpy() == labels).mean()), lg
    ref_acc, ref = acc_logits(PeftModel.from_pretrained(load_4bit(prof.classifier, task="seq_cls"), d))
    into4 = PeftModel.from_pretrained(load_4bit(prof.classifier, task="seq_cls"), d).merge_and_unload(); guard_cpu_4bit(into4)
    deq = PeftModel.from_pretrained(load_4bit(prof.classifier, task="seq_cls").dequantize().float(), d).merge_and_unload()
    orig = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(prof.classifier, dtype=torch.float32), d).merge_and_unload()
    res = {"unmerged 4-bit": dict(accuracy=ref_acc, max_logit_diff=0.0)}
    for name, m in (("into 4-bit", into4), ("into dequantised fp32", deq), ("into original fp32", orig)):
        a, lg = acc_logits(m)
        res[name] = dict(accuracy=a, max_logit_diff=(lg - ref).abs().max().item(),
                         flipped=int((lg.argmax(-1) != ref.argmax(-1)).sum()))
    return res
