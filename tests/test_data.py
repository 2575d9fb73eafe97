"Data loading error paths and the generated fallback."
import numpy as np, pytest
from datasets import Dataset, DatasetDict

from ft_course import data as D
from ft_course.setup import data_dir


def test_missing_column_lists_the_columns():
    ds = DatasetDict(train=Dataset.from_dict({"review": ["x"], "sentiment": [1]}))
    with pytest.raises(ValueError, match=r"\['review', 'sentiment'\]"):
        D.check_columns(ds)
    with pytest.raises(ValueError, match="rename_column"):
        D.tokenize(ds, None, 16)


def test_generated_source_needs_no_files(monkeypatch, tmp_path):
    monkeypatch.setenv("FT_COURSE_DATA", str(tmp_path))      # an empty data folder
    ds = D.load_sentiment(source="generated", n_train=50, n_eval=10)
    assert ds.num_rows == {"train": 50, "validation": 10}
    assert set(ds["train"]["label"]) <= {0, 1}


def test_local_needs_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FT_COURSE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        D.load_sentiment("imdb")


@pytest.mark.skipif(data_dir() is None, reason="no shared/data beside the checkout")
def test_subsample_is_seeded_and_sized():
    a = D.load_sentiment("sst2", n_train=100, n_eval=50, seed=1)
    b = D.load_sentiment("sst2", n_train=100, n_eval=50, seed=1)
    c = D.load_sentiment("sst2", n_train=100, n_eval=50, seed=2)
    assert list(a["train"]["text"]) == list(b["train"]["text"]) != list(c["train"]["text"])


def test_padding_fraction_static_exceeds_dynamic():
    lens = np.random.default_rng(0).integers(5, 40, size=1000)
    dyn, static = D.padding_fraction(lens, 32), D.padding_fraction(lens, 32, pad_to=512)
    assert 0 < dyn < static < 1
    assert static == pytest.approx(1 - lens.sum() / (512 * len(lens)))
