"""Every source selected by ``data.name``, on tiny files the tests write themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from lightning_divrec.config import DataConfig
from lightning_divrec.data.interactions import build_interactions
from lightning_divrec.data.sources.common import DataFormatError
from lightning_divrec.data.sources.registry import read_source, source_files
from lightning_divrec.data.sources.synthetic import generate

MOVIES_DAT = b"10::Star Wars: Episode IV (1977)::Action|Sci-Fi\n11::Mis\xe9rables, Les (1995)::Drama|Musical\n"
RATINGS_DAT = b"1::10::5::978300760\n1::11::3::978300761\n"
RATINGS_CSV = "userId,movieId,rating,timestamp\n1,10,4.5,1260759144\n2,11,3.0,1260759179\n2,10,1.5,1260759185\n"
MOVIES_CSV = (
    "movieId,title,genres\n"
    '10,"American President, The (1995)",Comedy|Drama|Romance\n'
    "11,Am\u00e9lie (2001),(no genres listed)\n"
)
ROWS = [("u1", "i1", 4.0, 100), ("u1", "i2", 2.0, 101), ("u2", "i1", 5.0, 102), ("u2", "i3", 3.0, 99)]


def config(**values) -> DataConfig:
    """Return a typed data config with the given keys set (nested groups as dicts)."""
    return OmegaConf.merge(OmegaConf.structured(DataConfig), values)


def test_ml1m_through_config(tmp_path: Path):
    (tmp_path / "ratings.dat").write_bytes(RATINGS_DAT)
    (tmp_path / "movies.dat").write_bytes(MOVIES_DAT)
    for name in ("ml-1m", "ml-10m"):
        tables = read_source(config(name=name, path=str(tmp_path)))
        rows = list(tables.interactions.itertuples(index=False, name=None))
        assert rows == [(1, 10, 5.0, 978300760), (1, 11, 3.0, 978300761)]
        assert tables.items["title"].tolist() == ["Star Wars: Episode IV (1977)", "Mis\u00e9rables, Les (1995)"]


def test_ratings_dat_wrong_field_count(tmp_path: Path):
    path = tmp_path / "ratings.dat"
    path.write_bytes(RATINGS_DAT + b"2::10::4::978300762::extra\n")
    from lightning_divrec.data.sources.movielens import read_ml1m_ratings

    with pytest.raises(DataFormatError, match="ratings.dat: expected 4 fields"):
        read_ml1m_ratings(path)


def test_ratings_dat_missing_field_names_row(tmp_path: Path):
    path = tmp_path / "ratings.dat"
    path.write_bytes(RATINGS_DAT + b"2::10::4\n")
    from lightning_divrec.data.sources.movielens import read_ml1m_ratings

    with pytest.raises(DataFormatError, match=r"data row 3: column 'timestamp'"):
        read_ml1m_ratings(path)


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-32m"])
def test_movielens_csv(tmp_path: Path, name: str):
    (tmp_path / "ratings.csv").write_text(RATINGS_CSV, encoding="utf-8")
    (tmp_path / "movies.csv").write_text(MOVIES_CSV, encoding="utf-8")
    tables = read_source(config(name=name, path=str(tmp_path)))
    rows = list(tables.interactions.itertuples(index=False, name=None))
    assert rows == [(1, 10, 4.5, 1260759144), (2, 11, 3.0, 1260759179), (2, 10, 1.5, 1260759185)]
    assert tables.items["title"].tolist() == ["American President, The (1995)", "Am\u00e9lie (2001)"]
    assert tables.items["categories"].tolist() == [["Comedy", "Drama", "Romance"], []]


def test_movielens_csv_errors(tmp_path: Path):
    (tmp_path / "movies.csv").write_text(MOVIES_CSV, encoding="utf-8")
    (tmp_path / "ratings.csv").write_text(RATINGS_CSV.replace("1260759179", "noon"), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"ratings.csv, data row 2: column 'timestamp' has non-numeric value 'noon'"):
        read_source(config(name="ml-20m", path=str(tmp_path)))
    (tmp_path / "ratings.csv").write_text(RATINGS_CSV.replace("movieId", "itemId"), encoding="utf-8")
    with pytest.raises(DataFormatError, match="missing column.s. movieId"):
        read_source(config(name="ml-20m", path=str(tmp_path)))
    (tmp_path / "ratings.csv").unlink()
    with pytest.raises(FileNotFoundError, match="ratings.csv not found"):
        read_source(config(name="ml-25m", path=str(tmp_path)))


def test_path_required(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="needs data.path"):
        read_source(config(name="ml-1m"))


def _write_table(path: Path, frame: pd.DataFrame) -> None:
    kind = path.suffix
    if kind == ".csv":
        frame.to_csv(path, index=False)
    elif kind == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif kind == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_tabular_formats_agree(tmp_path: Path, suffix: str):
    frame = pd.DataFrame(ROWS, columns=["uid", "iid", "stars", "when"])
    _write_table(tmp_path / f"log{suffix}", frame)
    items = pd.DataFrame({"iid": ["i1", "i2", "i3"], "name": ["One", "Two", "Three"], "tags": ["a|b", "b", ""]})
    _write_table(tmp_path / f"items{suffix}", items)
    mapping = {
        "interactions_file": f"log{suffix}", "items_file": f"items{suffix}", "user": "uid", "item": "iid",
        "rating": "stars", "timestamp": "when", "item_id": "iid", "title": "name", "categories": "tags",
    }
    tables = read_source(config(name="tabular", path=str(tmp_path), tabular=mapping))
    assert tables.interactions["user"].tolist() == ["u1", "u1", "u2", "u2"]
    assert tables.interactions["rating"].tolist() == [4.0, 2.0, 5.0, 3.0]
    assert tables.interactions["timestamp"].tolist() == [100, 101, 102, 99]
    data = build_interactions(tables.interactions, tables.items, tables.origin)
    assert data.item_ids.tolist() == ["i1", "i2", "i3"]
    assert data.item_titles == ["One", "Two", "Three"]
    assert data.category_names == ["a", "b"]
    assert data.item_categories.tolist() == [[True, True], [False, True], [False, False]]


def test_tabular_list_categories_and_integer_ids(tmp_path: Path):
    pd.DataFrame({"user_id": [7, 7, 9], "item_id": [3, 5, 3]}).to_json(tmp_path / "log.jsonl", orient="records", lines=True)
    pd.DataFrame({"item_id": [3, 5], "title": ["x", "y"], "categories": [["p", "q"], []]}).to_parquet(tmp_path / "items.parquet")
    mapping = {"interactions_file": "log.jsonl", "items_file": "items.parquet", "rating": None, "timestamp": None}
    tables = read_source(config(name="tabular", path=str(tmp_path), tabular=mapping))
    assert tables.interactions["user"].dtype == np.int64
    assert tables.interactions["rating"].tolist() == [1.0, 1.0, 1.0]
    # Without a timestamp column the row number is the time.
    assert tables.interactions["timestamp"].tolist() == [0, 1, 2]
    data = build_interactions(tables.interactions, tables.items, tables.origin)
    assert data.item_categories.tolist() == [[True, True], [False, False]]


def test_tabular_missing_column_named(tmp_path: Path):
    pd.DataFrame(ROWS, columns=["uid", "iid", "stars", "when"]).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataFormatError) as caught:
        read_source(config(name="tabular", path=str(tmp_path)))
    message = str(caught.value)
    assert "interactions.csv" in message
    assert "missing column(s) user_id, item_id, rating, timestamp" in message
    assert "the file has uid, iid, stars, when" in message


def test_tabular_bad_timestamp_names_row(tmp_path: Path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id,rating,timestamp\n1,2,3,4\n1,3,4,soon\n")
    with pytest.raises(DataFormatError, match=r"interactions.csv, data row 2: column 'timestamp'.*'soon'"):
        read_source(config(name="tabular", path=str(tmp_path)))


def test_tabular_unknown_suffix(tmp_path: Path):
    (tmp_path / "log.txt").write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataFormatError, match="set data.tabular.format"):
        read_source(config(name="tabular", path=str(tmp_path), tabular={"interactions_file": "log.txt"}))
    tables = read_source(
        config(name="tabular", path=str(tmp_path),
               tabular={"interactions_file": "log.txt", "format": "csv", "rating": None, "timestamp": None})
    )
    assert tables.interactions["item"].tolist() == [2]


def test_recbole_source(tmp_path: Path):
    (tmp_path / "toy.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t5\t10\n1\t3\t4\t11\n"
    )
    tables = read_source(config(name="recbole", path=str(tmp_path)))
    assert tables.interactions["item"].tolist() == [2, 3]
    assert tables.items is None
    (tmp_path / "other.inter").write_text("user_id:token\n")
    with pytest.raises(FileNotFoundError, match="exactly one"):
        read_source(config(name="recbole", path=str(tmp_path)))


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


REVIEWS = [
    {"rating": 5.0, "title": "Great", "text": "ok", "asin": "B01V1", "parent_asin": "B01", "user_id": "AE1",
     "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": True},
    {"rating": 2.0, "title": "Meh", "text": "no", "asin": "B02", "parent_asin": "B02", "user_id": "AE1",
     "timestamp": 1588687729000, "helpful_vote": 1, "verified_purchase": False},
    {"rating": 4.0, "title": "Fine", "text": "yes", "asin": "B01V2", "parent_asin": "B01", "user_id": "AF2",
     "timestamp": 1600000000500, "helpful_vote": 0, "verified_purchase": True},
]
METADATA = [
    {"main_category": "All Beauty", "title": "Rose Soap", "parent_asin": "B01",
     "categories": ["Beauty", "Skin Care"], "average_rating": 4.1},
    {"main_category": "All Beauty", "title": "Hair Clip", "parent_asin": "B02", "categories": [],
     "average_rating": 3.0},
]


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_amazon_2023_local_files(tmp_path: Path, kind: str):
    if kind == "jsonl":
        _write_jsonl(tmp_path / "reviews.jsonl", REVIEWS)
        _write_jsonl(tmp_path / "meta.jsonl", METADATA)
    else:
        pd.DataFrame(REVIEWS).to_parquet(tmp_path / "reviews.jsonl".replace("jsonl", "parquet"))
        pd.DataFrame(METADATA).to_parquet(tmp_path / "meta.parquet")
    amazon = {"reviews": f"reviews.{kind}", "metadata": f"meta.{kind}"}
    cfg = config(name="amazon-2023", path=str(tmp_path), cache_dir=str(tmp_path / "cache"), amazon=amazon)
    tables = read_source(cfg)
    assert tables.interactions["user"].tolist() == ["AE1", "AE1", "AF2"]
    assert tables.interactions["item"].tolist() == ["B01", "B02", "B01"]
    # Milliseconds become seconds.
    assert tables.interactions["timestamp"].tolist() == [1588687728, 1588687729, 1600000000]
    data = build_interactions(tables.interactions, tables.items, tables.origin)
    assert data.item_titles == ["Rose Soap", "Hair Clip"]
    assert data.category_names == ["All Beauty", "Beauty", "Skin Care"]
    # An empty ``categories`` list falls back to ``main_category``.
    assert data.item_categories.tolist() == [[False, True, True], [True, False, False]]
    assert [path.name for path in source_files(cfg)] == [f"reviews.{kind}", f"meta.{kind}"]


def test_amazon_2023_missing_column(tmp_path: Path):
    _write_jsonl(tmp_path / "reviews.jsonl", [{key: value for key, value in REVIEWS[0].items() if key != "parent_asin"}])
    cfg = config(name="amazon-2023", path=str(tmp_path), cache_dir=str(tmp_path / "cache"), amazon={"metadata": None})
    with pytest.raises(DataFormatError, match="missing column.s. parent_asin"):
        read_source(cfg)


def test_amazon_2023_offline_without_files(tmp_path: Path):
    cfg = config(name="amazon-2023", path=str(tmp_path), amazon={"category": "All_Beauty"})
    with pytest.raises(FileNotFoundError, match="data.download=true"):
        read_source(cfg)


def test_synthetic_seeded_and_shaped():
    settings = {"num_users": 300, "num_items": 200, "num_interactions": 6000, "num_categories": 7, "seed": 3}
    interactions, items = generate(config(synthetic=settings).synthetic)
    again, _ = generate(config(synthetic=settings).synthetic)
    other, _ = generate(config(synthetic={**settings, "seed": 4}).synthetic)
    assert interactions.equals(again)
    assert not interactions.equals(other)
    assert len(interactions) == 6000
    assert set(np.unique(interactions["user"])) == set(range(1, 301))
    counts = np.sort(np.bincount(interactions["item"], minlength=201)[1:])[::-1]
    # Power law with exponent 1 over 200 items: the top item has p = 1 / H_200 ~ 0.17,
    # the median item about 1/100 of that.
    harmonic = np.sum(1 / np.arange(1, 201))
    assert abs(counts[0] / 6000 - 1 / harmonic) < 0.03
    assert counts[0] > 20 * counts[100]
    sizes = items["categories"].map(len)
    assert sizes.between(1, 3).all()
    assert items["title"].str.len().between(5, 80).all()
    assert np.all(np.diff(np.sort(interactions["timestamp"])) >= 0)
