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


# --- any classification dataset (issue 15) ---
def _write(folder, **splits):
    import pandas as pd
    folder.mkdir(exist_ok=True)
    for name, rows in splits.items(): pd.DataFrame(rows).to_csv(folder/f"{name}.csv", index=False)
    return folder

def test_four_class_csv_with_its_own_column_names(tmp_path):
    rows = {"body": [f"text number {i}" for i in range(40)], "topic": ["world", "sports", "business", "sci"] * 10}
    ds = D.load_classification(_write(tmp_path/"d", train=rows, test=rows), "body", "topic", n_eval=4)
    assert ds.num_rows == {"train": 32, "validation": 4, "test": 40}
    assert D.class_names(ds) == ["business", "sci", "sports", "world"] and set(ds["train"]["label"]) == {0, 1, 2, 3}

@pytest.mark.parametrize("labels, ids, names", [
    ([1, 2, 3, 4], [0, 1, 2, 3], ["1", "2", "3", "4"]),      # stars: mapped in order of value
    ([0, 1, 0, 1], [0, 1, 0, 1], ["0", "1"]),                # already ids: kept
    (["pos", "neg", "pos", "neg"], [1, 0, 1, 0], ["neg", "pos"]),
])
def test_labels_become_ids_with_names(labels, ids, names):
    ds = D.encode_labels(DatasetDict(train=Dataset.from_dict({"text": list("abcd"), "label": labels})))
    assert list(ds["train"]["label"]) == ids and D.class_names(ds) == names

@pytest.mark.parametrize("rows, needle", [
    ({"text": ["a", "", "c", "d"] * 5, "label": [0, 1] * 10}, "empty 'text'"),
    ({"text": ["a"] * 20, "label": [0, None] * 10}, "have no label"),
    ({"review": ["a"] * 20, "label": [0, 1] * 10}, "no column 'text'"),
    ({"text": ["a"] * 20, "label": [0.5, 1.0] * 10}, "fractional"),
])
def test_bad_rows_give_one_line(rows, needle):
    with pytest.raises(ValueError) as e: D.load_classification(Dataset.from_dict(rows))
    assert needle in str(e.value) and "\n" not in str(e.value)

def test_a_hub_name_offline_says_what_to_do(monkeypatch):
    monkeypatch.setattr(D, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(FileNotFoundError, match="Hub is unreachable.*FT_COURSE_DATA"): D.read_dataset("someone/reviews")
    with pytest.raises(FileNotFoundError, match="does not exist"): D.read_dataset("reviews.csv")

def test_cpu_profile_without_shared_data_reads_the_hub(monkeypatch):
    "A learner's clone has no ../shared: the cpu profile then names the Hub, and offline says what to set"
    import ft_course.setup as S
    monkeypatch.setattr(S, "data_dir", lambda required=False: None)
    monkeypatch.setattr(D, "hub_reachable", lambda *a, **k: False)
    p = S.get_profile("cpu")
    assert p.source == "hub"
    with pytest.raises(FileNotFoundError, match="FT_COURSE_DATA"): D.load_profile_data(p)

def test_tsv_and_parquet_and_jsonl_read_alike(tmp_path):
    import pandas as pd
    df = pd.DataFrame({"text": ["good film", "bad film", "fine", "awful"], "label": [1, 0, 1, 0]})
    df.to_csv(tmp_path/"a.tsv", sep="\t", index=False); df.to_parquet(tmp_path/"a.parquet"); df.to_json(tmp_path/"a.jsonl", orient="records", lines=True)
    got = [list(D.read_dataset(tmp_path/f"a.{x}")["train"]["text"]) for x in ("tsv", "parquet", "jsonl")]
    assert got[0] == got[1] == got[2] == list(df.text)

def test_example_dataset_ships_with_the_package():
    ds = D.load_classification(D.example_path(), "speech", "play")
    assert len(D.class_names(ds)) == 4 and ds.num_rows["test"] == 639
    assert not set(ds["test"]["text"]) & set(ds["train"]["text"])          # no speech in both
