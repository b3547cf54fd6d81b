"""Readers of MovieLens and RecBole atomic files, on bytes written by the tests."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_divrec.data.sources import ml100k, movielens, recbole_atomic
from lightning_divrec.data.sources.common import DataFormatError

U_ITEM = (
    b"1|Caf\xe9 Society (1995)|01-Jan-1995||http://example.org/m1|0|0|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    b"2|Plain Title (1996)|||http://example.org/m2|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
MOVIES_DAT = b"10::Star Wars: Episode IV (1977)::Action|Sci-Fi\n11::Mis\xe9rables, Les (1995)::Drama|Musical\n"
RATINGS_DAT = b"1::10::5::978300760\n1::11::3::978300761\n"
U_DATA = b"196\t1\t3\t881250949\n"


def test_u_item_latin1_titles_and_genres(tmp_path: Path):
    path = tmp_path / "u.item"
    path.write_bytes(U_ITEM)
    with pytest.raises(UnicodeDecodeError):
        U_ITEM.decode("utf-8")
    items = movielens.read_ml100k_items(path)
    assert len(items) == 2
    assert items["title"][0] == "Caf\u00e9 Society (1995)"
    assert items["categories"][0] == ["Comedy", "Drama"]
    assert items["categories"][1] == ["unknown"]
    assert pd.isna(items["release_date"][1])
    assert items["item"].tolist() == [1, 2]


def test_u_item_has_24_fields(tmp_path: Path):
    path = tmp_path / "u.item"
    path.write_bytes(U_ITEM.replace(b"|0\n2|", b"\n2|", 1))
    with pytest.raises(DataFormatError, match=r"line 1: expected 24 fields"):
        movielens.read_ml100k_items(path)


def test_movies_dat_keeps_colon_in_title(tmp_path: Path):
    path = tmp_path / "movies.dat"
    path.write_bytes(MOVIES_DAT)
    movies = movielens.read_ml1m_movies(path)
    assert movies.shape == (2, 3)
    assert movies["title"][0] == "Star Wars: Episode IV (1977)"
    assert movies["title"][1] == "Mis\u00e9rables, Les (1995)"
    assert movies["categories"].tolist() == [["Action", "Sci-Fi"], ["Drama", "Musical"]]


def test_ratings_dat_and_u_data(tmp_path: Path):
    (tmp_path / "ratings.dat").write_bytes(RATINGS_DAT)
    (tmp_path / "u.data").write_bytes(U_DATA)
    ratings = movielens.read_ml1m_ratings(tmp_path / "ratings.dat")
    rows = list(ratings[["user", "item", "rating", "timestamp"]].itertuples(index=False, name=None))
    assert rows == [(1, 10, 5.0, 978300760), (1, 11, 3.0, 978300761)]
    single = movielens.read_ml100k_ratings(tmp_path / "u.data")
    assert list(single.iloc[0]) == [196, 1, 3.0, 881250949]


def test_non_numeric_timestamp_names_row(tmp_path: Path):
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t3\t100\n1\t3\t4\tyesterday\n")
    with pytest.raises(DataFormatError) as caught:
        movielens.read_ml100k_ratings(path)
    message = str(caught.value)
    assert str(path) in message
    assert "data row 2" in message
    assert "'timestamp'" in message
    assert "'yesterday'" in message


def test_recbole_atomic_files(tmp_path: Path):
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t3\t4\t100\n8\t3\t2\t90\n")
    item = tmp_path / "x.item"
    item.write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n3\tCafé Society\t1995\tComedy Drama\n", encoding="utf-8")
    frame = recbole_atomic.read_atomic_interactions(inter)
    assert frame["user"].tolist() == [7, 8]
    assert frame["timestamp"].tolist() == [100, 90]
    items = recbole_atomic.read_atomic_items(item)
    assert items["title"][0] == "Café Society"
    assert items["categories"][0] == ["Comedy", "Drama"]


def test_recbole_missing_column_named(tmp_path: Path):
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem:token\trating:float\ttimestamp:float\n7\t3\t4\t100\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) item_id"):
        recbole_atomic.read_atomic_interactions(inter)


def test_recbole_wheel_copy_is_complete(ml100k_folder: Path):
    files = ml100k.files_in(ml100k_folder)
    ratings, items = files.read()
    assert len(ratings) == 100_000
    assert ratings["user"].nunique() == 943
    assert ratings["item"].nunique() == 1682
    assert items.loc[items["item"] == 1, "title"].item() == "Toy Story"


def test_both_formats_give_same_interactions(tmp_path: Path, ml100k_folder: Path):
    recbole_ratings, _ = ml100k.files_in(ml100k_folder).read()
    lines = [f"{u}\t{i}\t{int(r)}\t{t}" for u, i, r, t in recbole_ratings.head(50).itertuples(index=False)]
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    (tmp_path / "u.item").write_bytes(U_ITEM)
    grouplens_ratings, _ = ml100k.files_in(tmp_path).read()
    pd.testing.assert_frame_equal(grouplens_ratings, recbole_ratings.head(50).reset_index(drop=True))


def test_given_path_without_files_is_an_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as caught:
        ml100k.locate_ml100k(str(tmp_path), download=False, cache_dir=str(tmp_path))
    assert f"data.path={tmp_path}" in str(caught.value)
    assert "u.data" in str(caught.value)


def test_not_found_lists_places_tried(tmp_path: Path, monkeypatch):
    # Simulates a machine without the recbole wheel; everything else is real.
    monkeypatch.setattr(ml100k, "recbole_copy", lambda: None)
    with pytest.raises(FileNotFoundError) as caught:
        ml100k.locate_ml100k(None, download=False, cache_dir=str(tmp_path / "cache"))
    message = str(caught.value)
    assert "recbole" in message
    assert str(tmp_path / "cache" / "ml-100k") in message
    assert "data.download=true" in message
    assert "pip install --no-deps recbole" in message
