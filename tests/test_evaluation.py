"""ft_course.evaluation: the error paths (bad labels, prompts too long, empty generations, one seed), the stored cpu
benchmark against its bar, and the prose numbers and stored outputs against their sources. (The notebook's Colab opening
is checked with every other notebook's in tests/test_colab.py.)"""
import json, re
from pathlib import Path

import pandas as pd
import pytest, torch

from ft_course.setup import get_profile
from ft_course.evaluation import (completion_labels, completion_loss, contamination_report, generate_answers, get_labels,
                                  load_chat_model, mean_sd, ngrams, parse_lenient, parse_strict, score_answers,
                                  sentiment_prompt, sst2_splits, to_prompt_completion)

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/"nbs"/"07a_evaluation.ipynb"
RESULTS = ROOT/"bench"/"results"/"eval_sst2.csv"


@pytest.fixture(scope="module")
def cpu_evaluation():
    "The cpu profile's generative-evaluation sizes (Profile.evaluation), which the stored benchmark must have used"
    from ft_course.setup import _cpu_profile
    try: return _cpu_profile().evaluation
    except ImportError as e: pytest.skip(f"the cpu profile's models are not installed: {e}")


@pytest.fixture(scope="module")
def tiny():
    return load_chat_model(get_profile("tiny"))


def _pairs(n=2):
    return [to_prompt_completion({"text": "a gorgeous , witty , seductive movie .", "label": 1})] * n


def test_unknown_label_set():
    with pytest.raises(ValueError, match="Unknown label set 'sentimnet'.*sentiment"): get_labels("sentimnet")
    with pytest.raises(ValueError, match="Unknown label set"): parse_strict("positive", "sst-2")
    with pytest.raises(ValueError, match="lowercase"): get_labels(("Positive", "Negative"))
    with pytest.raises(ValueError, match="distinct"): get_labels(("positive",))
    with pytest.raises(ValueError, match="not in the label set"): score_answers(["positive"], ["neutral"])
    with pytest.raises(ValueError, match="not in the label set"): score_answers(["positive"], [5])


def test_parsers():
    assert [parse_strict(a) for a in ("Positive.", "positive sentiment", "")] == ["positive", None, None]
    assert parse_lenient("The sentiment of this review is negative.") == "negative"
    assert parse_lenient("It is positive, not negative.") is None          # both labels: invalid, not a guess


def test_empty_answers_are_counted_never_scored():
    s = score_answers(["", "  \n", "positive"], [0, 1, 1])
    assert (s["correct"], s["invalid"], s["empty"], s["accuracy"]) == (1, 2, 2, 1 / 3)
    assert score_answers(["", ""], [0, 1], parse="lenient")["correct"] == 0


def test_empty_generation_end_to_end(tiny):
    "A model whose first token is a special token generates '' after decoding: counted as empty and invalid"
    model, tok = load_chat_model(get_profile("tiny"))
    with torch.no_grad(): model.lm_head.weight.zero_()               # equal logits: greedy picks id 0, a special token
    assert tok.convert_ids_to_tokens(0) in tok.all_special_tokens
    ans = generate_answers(model, tok, ["Is this positive?", "Is this negative?"], max_new_tokens=2)
    assert ans == ["", ""]
    s = score_answers(ans, [1, 0])
    assert (s["empty"], s["invalid"], s["correct"]) == (2, 2, 0)


def test_prompt_longer_than_max_length(tiny):
    model, tok = tiny
    long = sentiment_prompt("good " * 300)
    with pytest.raises(ValueError, match=r"Example 1 is \d+ tokens, longer than max_length=64: raise max_length"):
        generate_answers(model, tok, ["short", long], max_length=64)
    pairs = _pairs(1) + [to_prompt_completion({"text": "good " * 300, "label": 1})]
    with pytest.raises(ValueError, match=r"Example 1 is \d+ tokens, longer than max_length=120"):
        completion_loss(model, tok, pairs, max_length=120)


def test_no_chat_template(tiny):
    model, tok = tiny
    bare = type(tok).from_pretrained(get_profile("tiny").causal_lm)
    assert bare.chat_template is None
    with pytest.raises(ValueError, match="no chat template.*chat=False"): generate_answers(model, bare, ["hi"])
    assert len(generate_answers(model, bare, ["hi"], chat=False, max_new_tokens=2)) == 1


def test_completion_loss_masks_the_prompt(tiny):
    model, tok = tiny
    r = completion_loss(model, tok, _pairs(3), batch_size=2)
    ids, labels = completion_labels(tok, _pairs(1)[0]["prompt"], _pairs(1)[0]["completion"])
    answer = sum(l != -100 for l in labels)
    assert r["rows"] == 3 and r["tokens"] == 3 * answer and answer < 0.2 * len(ids)   # answer tokens only, not the prompt
    assert r["perplexity"] == pytest.approx(torch.tensor(r["loss"]).exp().item(), rel=1e-6)
    with pytest.raises(ValueError, match="empty"): completion_loss(model, tok, [])


def test_scoring_and_spread_errors():
    with pytest.raises(ValueError, match="2 answers for 1 gold"): score_answers(["a", "b"], [1])
    with pytest.raises(ValueError, match="No answers"): score_answers([], [])
    with pytest.raises(ValueError, match="parse='exact'"): score_answers(["positive"], [1], parse="exact")
    with pytest.raises(ValueError, match="at least two seeds"): mean_sd([0.9])
    m, sd = mean_sd([0.7, 0.8, 0.9])
    assert m == pytest.approx(0.8) and sd == pytest.approx(0.1)


def test_contamination_check():
    assert contamination_report(["the quick brown fox jumps over the lazy dog"],
                                ["The quick brown fox jumps over the lazy dog !", "a new sentence"], n=4)["flagged"] == 1
    with pytest.raises(ValueError, match="n >= 1"): ngrams("x", 0)


def test_splits_are_disjoint_and_decontaminated():
    s = sst2_splits(40, 10, 20)
    assert contamination_report(s["train"]["text"], s["validation"]["text"])["flagged"] == 0
    assert not set(s["train"]["text"]) & set(s["test"]["text"])
    with pytest.raises(ValueError, match="lower the sizes"): sst2_splits(10, 10, 10**5)


# --- the stored cpu benchmark and the notebook's stored run ---

def _cells(): return json.loads(NB.read_text(encoding="utf-8"))["cells"]
def _src(c): return "".join(c["source"])
def _out(c): return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in c.get("outputs", []))


def test_benchmark_meets_the_bar(cpu_evaluation):
    "Fine-tuned strict accuracy beats the base by more than the seed spread, and held-out loss falls"
    df = pd.read_csv(RESULTS)
    main = df[(df.eval_set == "dev") & (df.prompt == "one_word") & df.chat]
    base, ft = main[main.model == "base"].iloc[0], main[main.model == "lora"]
    assert len(ft) == 3 and sorted(ft.seed) == [0, 1, 2] and (main.n == cpu_evaluation["n_eval"]).all()
    m, sd = mean_sd(ft.strict)
    assert m - base.strict > sd and m - base.strict > 0
    assert ft.loss.max() < base.loss
    lr = ft.learning_rate.unique()
    assert list(lr) == [cpu_evaluation["learning_rate"]], "the notebook must train with the rate the benchmark chose"
    val = df[(df.model == "lora") & (df.eval_set == "validation")]
    assert val.sort_values(["strict", "loss"], ascending=[False, True]).learning_rate.iloc[0] == lr[0]
    c = df[df.model == "contaminated"].set_index("eval_set")
    assert c.loc["dev_seen", "flagged"] > 0 and c.loc["dev_unseen", "flagged"] == 0
    md = RESULTS.with_suffix(".md").read_text()
    assert "python bench/eval_sst2.py" in md and f"{m:.3f} ± {sd:.3f}" in md


def test_reference_accuracy_comes_from_02():
    "The classifier reference quoted here is the full fine-tuning notebook's stored cpu run"
    nb02 = json.loads((ROOT/"nbs"/"02_full_finetune.ipynb").read_text(encoding="utf-8"))["cells"]
    got = {m for c in nb02 for m in re.findall(r"dev accuracy (\d+\.\d)%", _out(c))}
    prose = re.sub(r"<!--claim:[\w.-]+-->", "", "\n".join(_src(c) for c in _cells() if c["cell_type"] == "markdown"))
    assert got == {"84.5"}
    assert "reaches 84.5% on the dev set" in prose


def test_notebook_stored_run_is_cpu():
    shown = {m.group(1) for c in _cells() for m in [re.match(r"\('(tiny|cpu|gpu)', ", _out(c))] if m}   # `prof.name, ...`
    assert shown == {"cpu"}, f"07a's stored outputs should come from the cpu profile, found {shown}"
    text = "\n".join(_out(c) for c in _cells())
    assert "/root/" not in text and "/work/" not in text and "Warning" not in text and "it/s]" not in text

