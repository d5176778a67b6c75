"""The ``audit`` command line: identifier columns, row labels and one-line errors."""

import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from skinfluence import _audit
from skinfluence.__main__ import main

pd = pytest.importorskip("pandas")

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Félix", "Greta", "Hugo", "Inès", "Jonas"]
LAST = ["Müller", "García", "Nowak", "Rossi", "Dubois", "Smith", "Kowalski", "Sørensen",
        "Ibáñez", "Chen"]
FLIPPED = 7  # 0-based position of the row whose label is wrong


def _people(n=100):
    """Three informative columns, a categorical one, names, ids and one flipped label."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    y[FLIPPED] = 1 - y[FLIPPED]
    return pd.DataFrame({
        "name": [f"{FIRST[i % 10]} {LAST[i // 10 % 10]}" for i in range(n)],
        "id": rng.permutation(n) + 1000,
        "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2],
        "site": np.where(np.arange(n) % 3 == 0, "Zürich", "Málaga"),
        "label": y,
    })


def _run(*argv):
    return main(["audit", *map(str, argv)])


def _note(text):
    lines = [line for line in text.splitlines() if "left out of the features" in line]
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def csv_file(tmp_path):
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame.iloc[:200].copy()
    df["site"] = np.where(np.arange(200) % 3 == 0, "B", "A")
    df.loc[10, "target"] = 1 - df.loc[10, "target"]  # one wrong label
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def test_audit_cli_ranks_the_flipped_row(csv_file, tmp_path, capsys):
    out = tmp_path / "ranking.csv"
    assert _run(csv_file, "--target", "target", "--top", "5", "--output", out) == 0
    text = capsys.readouterr().out
    assert "most suspicious first" in text
    assert "left out of the features" not in text  # nothing looks like an identifier
    ranking = pd.read_csv(out)
    assert list(ranking.columns[:4]) == ["row", "self_influence", "target", "predicted"]
    assert len(ranking) == 200 and ranking["self_influence"].is_monotonic_increasing
    assert 11 in ranking["row"].head(5).to_list()  # row numbers start at 1


def test_true_false_columns_are_features(tmp_path, capsys):
    # a bool column went to the imputer for text, which refuses bool: the audit failed
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    flag = rng.random(80) < 0.5
    label = ((x + 2 * flag + rng.normal(size=80)) > 1).astype(int)
    path = tmp_path / "flags.csv"
    pd.DataFrame({"x": x, "flag": flag, "label": label}).to_csv(path, index=False)
    out = tmp_path / "ranking.csv"
    assert _run(path, "--target", "label", "--output", out) == 0
    ranking = pd.read_csv(out)
    assert len(ranking) == 80 and set(ranking["flag"]) == {True, False}  # shown as given


def test_date_columns_are_days_since_the_earliest(tmp_path, capsys):
    """Distinct dates were left out as "free text" and repeated ones one-hot encoded;
    they are days since the earliest to the model (as the audit of that number column
    gives), shown as given, with a note; version numbers stay text."""
    rng = np.random.default_rng(0)
    n = 120
    days = rng.permutation(400)[:n]
    dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(days, unit="D")
    label = ((days - 200) / 100 + rng.normal(size=n) > 0).astype(int)
    frame = pd.DataFrame({"signup": dates.strftime("%d/%m/%Y"), "x": rng.normal(size=n),
                          "version": rng.choice(["1.2.3", "1.10.0", "2.0.1"], n),
                          "label": label})
    frame.loc[5, "signup"] = None
    path = tmp_path / "dates.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "ranking.csv"
    assert _run(path, "--target", "label", "--output", out) == 0
    printed = capsys.readouterr().out
    assert "'signup' read as dates: the model sees days since the earliest" in printed
    ranking = pd.read_csv(out)
    assert set(ranking["signup"].dropna()) <= set(frame["signup"])  # shown as given
    # the same audit with the days written out as numbers
    numbers = frame.assign(signup=(days - days.min()).astype(float))
    numbers.loc[5, "signup"] = np.nan
    numbers.to_csv(tmp_path / "days.csv", index=False)
    assert _run(tmp_path / "days.csv", "--target", "label", "--output", tmp_path / "d.csv") == 0
    expected = pd.read_csv(tmp_path / "d.csv")
    np.testing.assert_allclose(ranking["self_influence"], expected["self_influence"],
                               rtol=1e-8)
    assert "version" in ranking.columns and set(ranking["version"]) <= {"1.2.3", "1.10.0",
                                                                         "2.0.1"}


def test_a_date_column_with_a_stray_cell_is_refused_by_row(tmp_path, capsys):
    """One impossible date among 300 made the column text, just under the "nearly all
    distinct" cut: one-hot encoded into 260 columns, silently. It is refused as a
    column of numbers with a stray cell is; --keep keeps it as text categories."""
    rng = np.random.default_rng(0)
    n = 300
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    frame = pd.DataFrame({"x": rng.normal(size=n), "signup": dates.strftime("%Y-%m-%d"),
                          "y": rng.integers(0, 2, n)})
    for bad in ("2021-02-30", "unknown"):
        frame.loc[5, "signup"] = bad
        frame.to_csv(tmp_path / "bad.csv", index=False)
        assert _run(tmp_path / "bad.csv", "--target", "y") == 2
        err = capsys.readouterr().err
        assert f"column 'signup' holds dates but for 1 cell (first at row 6: '{bad}')" in err
        assert "--keep signup" in err and len(err.strip().splitlines()) == 1
    assert _run(tmp_path / "bad.csv", "--target", "y", "--keep", "signup") == 0
    assert "read as dates" not in capsys.readouterr().out
    # 10% of the cells "unknown" is still a column of dates (it was 181 one-hot columns)
    frame["signup"] = dates.strftime("%Y-%m-%d")
    frame.loc[rng.choice(n, 30, replace=False), "signup"] = "unknown"
    frame.to_csv(tmp_path / "unknown.csv", index=False)
    assert _run(tmp_path / "unknown.csv", "--target", "y") == 2
    assert "holds dates but for 30 cells" in capsys.readouterr().err
    # offsets that change with daylight saving (+0100 / +0200) are dates too (they were
    # taken for row labels)
    paris = (pd.Timestamp("2020-01-01", tz="Europe/Paris")
             + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"))
    frame["signup"] = paris.strftime("%Y-%m-%dT%H:%M:%S%z")
    frame.to_csv(tmp_path / "paris.csv", index=False)
    assert _run(tmp_path / "paris.csv", "--target", "y") == 0
    assert "'signup' read as dates" in capsys.readouterr().out


def test_identifier_columns_are_left_out_and_named_in_one_note(tmp_path, capsys):
    df = _people().sample(frac=1.0, random_state=0)  # the saved index is a shuffled label
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    df.to_csv(path)  # with the index: an 'Unnamed: 0' column
    assert _run(path, "--target", "label", "--output", out) == 0
    text = capsys.readouterr()
    assert text.err == ""
    note = _note(text.out)
    for name in ("'Unnamed: 0'", "'name'", "'id'"):
        assert name in note
    ranking = pd.read_csv(out)
    assert list(ranking.columns) == ["index", "row", "self_influence", "label", "predicted",
                                     "x1", "x2", "x3", "site"]
    assert ranking["index"].iloc[0] == FLIPPED  # labelled by the saved index...
    flipped_row = df.index.get_loc(FLIPPED) + 1
    assert ranking["row"].iloc[0] == flipped_row  # ...and by its row in the file


def test_index_col_labels_the_rows(tmp_path, capsys):
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    df = _people()
    df.to_csv(path, index=False)
    assert _run(path, "--target", "label", "--index-col", "name", "--output", out) == 0
    note = _note(capsys.readouterr().out)
    assert "'id'" in note and "'name'" not in note  # the user's choice is not re-announced
    ranking = pd.read_csv(out)
    assert list(ranking.columns[:2]) == ["name", "row"]
    assert ranking["name"].iloc[0] == df["name"].iloc[FLIPPED]
    assert list(ranking.columns[5:]) == ["x1", "x2", "x3", "site"]


def test_drop_and_keep(tmp_path, capsys):
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    _people().to_csv(path, index=False)
    assert _run(path, "--target", "label", "--drop", "x3", "site", "--keep", "id",
                "--output", out) == 0
    text = capsys.readouterr().out
    assert "3 feature columns" in text
    assert "'id'" not in _note(text)
    # the distinct names label the rows (an identifier, left out of the features)
    assert list(pd.read_csv(out).columns) == ["name", "row", "self_influence", "label",
                                              "predicted", "id", "x1", "x2"]


def test_dropna_leaves_out_rows_with_a_missing_target(tmp_path, capsys):
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    df = _people()
    df["label"] = df["label"].astype(float)
    df.loc[[0, 5, 50], "label"] = np.nan
    df.to_csv(path, index=False)
    assert _run(path, "--target", "label", "--dropna", "--output", out) == 0
    assert "--dropna left out 3 rows" in capsys.readouterr().out
    ranking = pd.read_csv(out)
    assert len(ranking) == 97 and not {1, 6, 51} & set(ranking["row"])
    assert ranking["row"].iloc[0] == FLIPPED + 1  # rows keep their numbers in the file
    assert ranking["label"].dtype.kind == "i"  # whole labels again once the NaN are gone


def test_named_index_saved_by_pandas_labels_the_rows(tmp_path, capsys):
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    df = _people().drop(columns=["id", "name"])
    df.index = pd.Index([f"P{1000 + i}" for i in range(len(df))], name="passenger_id")
    df.to_csv(path)  # the index is written as the first, named column
    assert _run(path, "--target", "label", "--output", out) == 0
    assert "'passenger_id' (" in _note(capsys.readouterr().out)
    ranking = pd.read_csv(out)
    assert ranking.columns[0] == "passenger_id" and "passenger_id" not in ranking.columns[1:]
    assert ranking["passenger_id"].iloc[0] == f"P{1000 + FLIPPED}"


def test_index_col_must_identify_the_rows(tmp_path, capsys):
    path = tmp_path / "people.csv"
    _people().to_csv(path, index=False)
    assert _run(path, "--target", "label", "--index-col", "site") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not identify the rows" in err[0]


def test_latin1_file_with_accented_names(tmp_path, capsys):
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    _people().to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert _run(path, "--target", "label", "--index-col", "name", "--output", out) == 0
    assert "not UTF-8" in capsys.readouterr().out
    ranking = pd.read_csv(out)
    assert ranking["name"].iloc[0] == "Hugo Müller" and set(ranking["site"]) == {"Zürich",
                                                                                 "Málaga"}


def test_utf8_file_with_a_stray_latin1_byte_keeps_its_accents(tmp_path, capsys):
    """One cp1252 byte in a UTF-8 file: only that byte is read as cp1252 (the whole
    file read as cp1252 showed 'ZÃ¼rich' on every row), and the note names its row."""
    path, out = tmp_path / "people.csv", tmp_path / "ranking.csv"
    people = _people()
    data = people.to_csv(index=False).encode("utf-8")
    first = data.index("Müller".encode("utf-8"))
    data = data[:first] + "Müller".encode("latin-1") + data[first + len("Müller".encode()):]
    path.write_bytes(data)
    row = data[:first].count(b"\n")
    assert _run(path, "--target", "label", "--index-col", "name", "--output", out) == 0
    assert f"is UTF-8 but for bytes that are not (first on row {row})" in \
        capsys.readouterr().out
    ranking = pd.read_csv(out)
    assert set(ranking["site"]) == {"Zürich", "Málaga"}
    assert set(ranking["name"]) == set(people["name"])


def test_compressed_csv_and_reserved_column_names(tmp_path, capsys):
    df = _people().rename(columns={"x2": "row", "x3": "predicted"})
    path, out = tmp_path / "people.csv.gz", tmp_path / "ranking.csv"
    path.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    assert _run(path, "--target", "label", "--output", out) == 0
    ranking = pd.read_csv(out)
    assert list(ranking.columns) == ["name", "row_", "self_influence", "label", "predicted_",
                                     "x1", "row", "predicted", "site"]
    assert ranking["row_"].iloc[0] == FLIPPED + 1


@pytest.mark.parametrize("name, reason", [
    ("id", "id"), ("ID", "id"), ("Id", "id"), ("customer_id", "id"), ("PassengerId", "id"),
    ("Customer ID", "id"), ("uuid", "id"), ("paid", None), ("valid", None), ("grid", None),
    ("Unnamed: 0", "saved pandas index"),
])
def test_identifier_names(name, reason):
    col = pd.Series([3, 1, 4, 10, 5, 9, 2, 6])  # distinct, but not a counter
    found = _audit._identifier_reason(name, col, position=0, leading_unnamed=1)
    assert found is None if reason is None else found[1].startswith(reason)


def test_counter_and_text_columns_are_identifiers():
    n = 40
    counter = pd.Series(np.arange(1, n + 1))
    assert _audit._identifier_reason("k", counter, 3, 0)[0] == "index"
    assert _audit._identifier_reason("k", counter - 1, 3, 0)[0] == "index"
    assert _audit._identifier_reason("k", counter[::-1].reset_index(drop=True), 3, 0) is None
    assert _audit._identifier_reason("k", counter + 1, 3, 0) is None
    text = pd.Series([f"comment number {i}" for i in range(n)])
    assert _audit._identifier_reason("comment", text, 3, 0)[0] == "text"
    assert _audit._identifier_reason("comment", text[:19], 3, 0) is None  # too few to tell
    assert _audit._identifier_reason("city", pd.Series(["a", "b"] * 20), 3, 0) is None


# ---------------------------------------------------------------------- bad input
GOOD = "x,z,y\n" + "".join(f"{i % 7},{(i * 5) % 3},{i % 2}\n" for i in range(40))
FLOATS = "x,y\n" + "".join(f"{i * 0.37:.2f},{(i * 1.13) % 7:.3f}\n" for i in range(60))
COUNTS = "x,y\n" + "".join(f"{i / 10},{i % 4}\n" for i in range(40))  # counts with zeros
NOT_GZIP = b"x,y\n1,2\n"  # written to a .csv.gz file
NAMES = "x,y\n" + "".join(f"{i % 7},person {i}\n" for i in range(60))


def _with(value, column="x", row=2, text=GOOD):
    """``text`` with one value replaced."""
    df = pd.read_csv(io.StringIO(text))
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df.to_csv(index=False)


# (id, file content: str, bytes, "dir" or None (no file), args, keywords for the error line)
BAD = [
    ("empty", "", ["--target", "y"], ["empty"]),
    ("blank-lines", "\n  \n", ["--target", "y"], ["empty"]),
    ("header-only", "a,b\n", ["--target", "b"], ["no data rows"]),
    ("unknown-target", "a,b\n1,2\n3,4\n", ["--target", "c"], ["not in", "a, b"]),
    ("stray-cell-in-numbers", "x,y\n" + "".join(f"{i}.5,{i % 2}\n" for i in range(30))
     + '"1,5",0\n', ["--target", "y"], ["'x'", "but for 1 cell", "row 31", "'1,5'", "--drop x"]),
    ("misspelt-target", "age,income\n1,2\n3,4\n", ["--target", "incme"],
     ["did you mean 'income'"]),
    ("semicolons", "a;b\n1;2\n3;4\n", ["--target", "b"], ["not in", "separated"]),
    ("regress-text", "a,b\n1,x\n3,y\n", ["--target", "b", "--task", "regression"],
     ["not numeric"]),
    ("single-class", "a,b\n1,0\n3,0\n", ["--target", "b"], ["single class"]),
    ("constant-amount", "a,b\n1,3.5\n3,3.5\n4,3.5\n", ["--target", "b", "--model", "ridge"],
     ["single value (3.5)", "target that varies"]),
    ("fractional-classes", "a,b\n1,1.5\n3,2.5\n4,1.5\n", ["--target", "b"],
     ["2 distinct numbers with fractions (1.5, 2.5)", "--task regression", "--task class"]),
    ("directory", "dir", ["--target", "y"], ["is a directory"]),
    ("missing-file", None, ["--target", "y"], ["no such file"]),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), ["--target", "y"],
     ["not a text CSV", "PNG"]),
    ("gzip-named-csv", gzip.compress(GOOD.encode()), ["--target", "y"],
     ["not a text CSV", "gzip"]),
    ("zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64), ["--target", "y"],
     ["not a text CSV", "zip"]),
    ("nul-bytes", b"x,y\n1,\x002\n3,4\n", ["--target", "y"], ["not a text CSV", "NUL"]),
    ("bad-gz", NOT_GZIP, ["--target", "y"], ["cannot decompress"]),
    ("ragged-long", "a,b\n1,2\n3,4,5\n6,7\n", ["--target", "b"], ["line 3", "3 fields"]),
    ("ragged-short", "a,b,c\n1,2,3\n4,5\n", ["--target", "b"], ["line 3", "2 fields"]),
    ("extra-field-everywhere", "a,b\n1,2,3\n4,5,6\n", ["--target", "b"], ["line 2"]),
    ("unclosed-quote", 'a,b\n1,"2\n3,4\n', ["--target", "b"], ["cannot parse"]),
    ("inf-feature", _with("inf"), ["--target", "y"], ["'x'", "infinite", "row 3"]),
    ("minus-inf-feature", _with("-inf"), ["--target", "y"], ["'x'", "infinite"]),
    ("huge-feature", _with("1e308"), ["--target", "y"], ["'x'", "too large", "--drop x"]),
    ("huge-feature-1e200", _with("-1e200"), ["--target", "y"], ["'x'", "too large"]),
    ("inf-target", _with("inf", "y", text=FLOATS), ["--target", "y"],
     ["target", "'y'", "infinite"]),
    ("empty-feature", "x,e,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(30)),
     ["--target", "y"], ["'e'", "empty", "--drop e"]),
    ("continuous-as-classes", FLOATS, ["--target", "y", "--task", "classification"],
     ["continuous", "--task regression"]),
    ("too-many-classes", NAMES, ["--target", "y"], ["too many classes"]),
    ("top-zero", GOOD, ["--target", "y", "--top", "0"], ["--top"]),
    ("top-negative", GOOD, ["--target", "y", "--top", "-3"], ["--top", "-3"]),
    ("output-no-dir", GOOD, ["--target", "y", "--output", "{tmp}/nowhere/out.csv"],
     ["does not exist"]),
    ("output-is-dir", GOOD, ["--target", "y", "--output", "{tmp}"], ["is a directory"]),
    ("output-under-file", GOOD, ["--target", "y", "--output", "{csv}/out.csv"],
     ["not a directory"]),
    ("output-is-input", GOOD, ["--target", "y", "--output", "{csv}"], ["overwrite"]),
    ("index-col-unknown", GOOD, ["--target", "y", "--index-col", "nope"],
     ["--index-col", "'nope'", "not in"]),
    ("drop-unknown", GOOD, ["--target", "y", "--drop", "z", "nope"], ["--drop", "'nope'"]),
    ("keep-unknown", GOOD, ["--target", "y", "--keep", "nope"], ["--keep", "'nope'"]),
    ("index-col-is-target", GOOD, ["--target", "y", "--index-col", "y"], ["--index-col"]),
    ("drop-target", GOOD, ["--target", "y", "--drop", "y"], ["--drop", "target"]),
    ("drop-and-keep", GOOD, ["--target", "y", "--drop", "x", "--keep", "x"], ["both"]),
    ("nothing-left", GOOD, ["--target", "y", "--drop", "x", "z"],
     ["no feature columns", "'x'"]),
    ("only-identifiers", "id,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)),
     ["--target", "y"], ["no feature columns", "'id'"]),
    ("missing-target", _with("", "y"), ["--target", "y"], ["1 missing", "--dropna"]),
    ("all-targets-missing", "x,y\n1,\n2,\n", ["--target", "y", "--dropna"], ["every row"]),
    ("poisson-negative", _with("-2", "y", text=FLOATS), ["--target", "y", "--model", "poisson"],
     ["'y'", "outside what --model poisson fits", "counts >= 0", "row "]),
    ("gamma-zero", COUNTS, ["--target", "y", "--model", "gamma"],
     ["--model gamma", "positive values", "e.g. 0", "--model tweedie"]),
    ("poisson-as-classifier", COUNTS, ["--target", "y", "--model", "poisson", "--task",
                                        "classification"], ["regression model", "--task"]),
    ("logistic-regression", FLOATS, ["--target", "y", "--model", "logistic", "--task",
                                     "regression"], ["classifier", "--model ridge"]),
    ("cooks-classification", GOOD, ["--target", "y", "--rank", "cooks"],
     ["--rank cooks", "regression"]),
    ("weight-negative", _with("-1", "z", text=COUNTS.replace("x,y", "x,y,z").replace(
        "\n", ",1\n").replace("x,y,z,1", "x,y,z")), ["--target", "y", "--weight", "z",
                                                      "--model", "poisson"],
     ["--weight", "'z'", ">= 0", "-1"]),
    ("weight-empty-cell", _with(None, "z", text=COUNTS.replace("x,y", "x,y,z").replace(
        "\n", ",1\n").replace("x,y,z,1", "x,y,z")), ["--target", "y", "--weight", "z",
                                                      "--model", "poisson"],
     ["--weight", "'z'", "first: an empty cell in row 3"]),
    ("duplicate-header", "a,y,b,y\n" + "".join(f"{i},{i % 2},{i % 3},{i % 2}\n"
                                                for i in range(30)),
     ["--target", "y"], ["names 'y' twice (columns 2 and 4)", "rename or remove one"]),
    ("duplicate-header-spaces", "a,y,y \n" + "".join(f"{i},{i % 2},{i % 2}\n"
                                                    for i in range(30)),
     ["--target", "y"], ["names 'y' twice (columns 2 and 3, with spaces)"]),
    ("semicolons-decimal-commas", "x;y\n" + "".join(f"{i},5;{i % 2}\n" for i in range(30)),
     ["--target", "y"], ["line 2 has 2 fields but the header (line 1) has 1",
                         "separated by ';', not commas (decimal commas too?)"]),
    ("semicolons", "a;b;y\n" + "".join(f"{i};{i % 3};{i % 2}\n" for i in range(30)),
     ["--target", "y"], ["a single column: the file looks separated by ';', not commas"]),
    ("weight-unknown", COUNTS, ["--target", "y", "--weight", "exposure"], ["--weight", "not in"]),
    ("all-zero-counts", "x,y\n" + "".join(f"{i % 7},0\n" for i in range(30)),
     ["--target", "y", "--model", "poisson"], ["zero on every row"]),
    ("text-counts", _with("two", "y", text=COUNTS), ["--target", "y", "--model", "poisson"],
     ["not numeric", "'two'", "--model poisson"]),
]


def _forbid(name):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} was called")
    return forbidden


@pytest.mark.parametrize("content, args, keywords", [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, content, args,
                                               keywords):
    path = tmp_path / ("data.csv.gz" if content is NOT_GZIP else "data.csv")
    if content == "dir":
        path = tmp_path / "folder.csv"
        path.mkdir()
    elif content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = [a.format(tmp=tmp_path, csv=path) for a in args]
    monkeypatch.setattr(_audit, "_fit", _forbid("the fit"))
    if "--output" in args:  # checked before the file is even read
        monkeypatch.setattr(_audit, "_load", _forbid("reading the CSV"))
    before = sorted(os.listdir(tmp_path))
    assert _run(path, *args) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("skinfluence audit: error: "), captured.err
    assert captured.out == ""
    for word in keywords:
        assert word in err[0]
    assert sorted(os.listdir(tmp_path)) == before  # no output file left behind


@pytest.mark.skipif(getattr(os, "geteuid", lambda: 1)() == 0,
                    reason="root can write to read-only directories")
def test_unwritable_output_directory(tmp_path, capsys, monkeypatch):
    path, folder = tmp_path / "data.csv", tmp_path / "locked"
    path.write_text(GOOD)
    folder.mkdir()
    folder.chmod(0o500)
    try:
        monkeypatch.setattr(_audit, "_load", _forbid("reading the CSV"))
        assert _run(path, "--target", "y", "--output", folder / "out.csv") == 2
    finally:
        folder.chmod(0o700)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot write --output" in err[0]
    assert not os.listdir(folder)


def test_output_permission_error_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text(GOOD)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_audit, "open", refuse, raising=False)  # works as root, too
    monkeypatch.setattr(_audit, "_load", _forbid("reading the CSV"))
    assert _run(path, "--target", "y", "--output", tmp_path / "out.csv") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"skinfluence audit: error: cannot write --output {tmp_path / 'out.csv'}: "
        "Permission denied"
    ]
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


def test_fit_errors_are_one_line_but_interrupts_pass(tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text(GOOD)

    class Broken:
        def __init__(self, exc):
            self.exc = exc

        def fit(self, X, y):
            raise self.exc

    monkeypatch.setattr(_audit, "_pipeline", lambda *a: Broken(ValueError("bad\ninput")))
    assert _run(path, "--target", "y") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["skinfluence audit: error: the model could not be fitted: ValueError: "
                   "bad input"]
    monkeypatch.setattr(_audit, "_pipeline", lambda *a: Broken(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _run(path, "--target", "y")


def test_fit_warnings_are_printed_as_lines(tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text(GOOD)

    from skinfluence import InfluenceLogisticRegression

    class Warns(InfluenceLogisticRegression):
        def fit(self, X, y, sample_weight=None):
            import warnings

            warnings.warn("the fit\nis dubious", UserWarning)
            return super().fit(X, y, sample_weight)

    original = _audit._pipeline

    def pipeline(*args):
        pipe = original(*args)
        pipe.steps[-1] = ("warns", Warns(solver="newton-cholesky", tol=1e-10))
        return pipe

    monkeypatch.setattr(_audit, "_pipeline", pipeline)
    assert _run(path, "--target", "y", "--top", "2") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("warning: UserWarning: the fit is dubious\n") == 1
    # the ranking is still printed after the warning: two rows, most negative first
    table = [line.split() for line in captured.out.splitlines()[-2:]]
    assert float(table[0][1]) <= float(table[1][1]) < 0


@pytest.mark.parametrize("args", [["--top", "abc", "--target", "y"], []])
def test_argparse_errors_exit_2(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exc:
        _run(tmp_path / "data.csv", *args)
    assert exc.value.code == 2 and "usage:" in capsys.readouterr().err


def test_help_text(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--help"])
    text = capsys.readouterr().out
    assert exc.value.code == 0
    for option in ("--target COL", "--index-col COL", "--drop COL [COL ...]", "--keep",
                   "--dropna", "--output FILE", "self-influence"):
        assert option in text


def test_module_command_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skinfluence", "audit", str(tmp_path), "--target", "y"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"skinfluence audit: error: {tmp_path} is a directory, not a CSV file"
    ]


def test_audit_entry_point_is_installed():
    from importlib.metadata import entry_points

    eps = entry_points(group="console_scripts")
    assert any(ep.name == "skinfluence" and ep.value == "skinfluence.__main__:main" for ep in eps)


def _claims(n=300, seed=0):
    """Policies with a claim count; one policy has an impossible number of claims."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "policy": [f"P{i:04d}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "region": rng.choice(["north", "south", "city"], n),
    })
    rate = np.exp(-1.0 + 0.7 * (df["region"] == "city") - 0.01 * (df["age"] - 40))
    df["claims"] = rng.poisson(rate)
    df.loc[42, "claims"] = 15
    return df


@pytest.mark.parametrize("model", ["poisson", "tweedie"])
def test_count_target_audit_ranks_by_cooks_distance(tmp_path, capsys, model):
    path = tmp_path / "claims.csv"
    _claims().to_csv(path, index=False)
    out = tmp_path / "ranking.csv"
    assert _run(path, "--target", "claims", "--model", model, "--index-col", "policy",
                "--output", out) == 0
    text = capsys.readouterr().out
    assert f"regression ({model}:" in text and "largest Cook's distance" in text
    ranking = pd.read_csv(out)
    assert list(ranking.columns[:6]) == ["policy", "row", "self_influence", "cooks_distance",
                                         "claims", "predicted"]
    assert ranking["cooks_distance"].is_monotonic_decreasing
    assert ranking["policy"].iloc[0] == "P0042"
    # the predictions are the model's means (counts are never predicted negative)
    assert (ranking["predicted"] > 0).all()


def test_weight_column_is_a_sample_weight_not_a_feature(tmp_path, capsys):
    df = _claims()
    df["exposure"] = np.random.default_rng(1).uniform(0.2, 1.0, len(df))
    df["frequency"] = df["claims"] / df["exposure"]
    path = tmp_path / "claims.csv"
    df.drop(columns="claims").to_csv(path, index=False)
    out = tmp_path / "ranking.csv"
    assert _run(path, "--target", "frequency", "--model", "poisson", "--weight", "exposure",
                "--index-col", "policy", "--output", out) == 0
    assert "2 feature columns" in capsys.readouterr().out
    ranking = pd.read_csv(out).set_index("policy")
    # the same numbers as the pipeline fitted by hand with those weights
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from skinfluence import InfluencePoissonRegressor, explain

    pre = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
          make_column_selector(dtype_include=np.number)),
         ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
          make_column_selector(dtype_exclude=np.number))], sparse_threshold=0.0)
    pipe = make_pipeline(pre, InfluencePoissonRegressor(
        alpha=1e-4, solver="newton-cholesky", tol=1e-10, max_iter=200))
    X = df[["age", "region"]]
    pipe.fit(X, df["frequency"], influencepoissonregressor__sample_weight=df["exposure"])
    cooks = pd.Series(explain(pipe).cooks_distance(), index=df["policy"])
    np.testing.assert_allclose(ranking["cooks_distance"], cooks[ranking.index], rtol=1e-6)
    # the weight is shown with each row (a suspicious row's exposure is part of the story)
    exposure = df.set_index("policy")["exposure"]
    np.testing.assert_allclose(ranking["exposure"], exposure[ranking.index], rtol=1e-12)
    columns = list(ranking.columns)
    assert columns.index("exposure") == columns.index("predicted") + 1


def test_fractional_numbers_as_classes_when_asked(tmp_path, capsys):
    """--task classification on 1.5 / 2.5 treats each value as a class named as written
    (scikit-learn takes no float labels), with the numbers of the same audit on text."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    df["score"] = np.where(df.a + 0.5 * rng.normal(size=60) > 0, 2.5, 1.5)
    path, out = tmp_path / "s.csv", tmp_path / "r.csv"
    df.to_csv(path, index=False)
    assert _run(path, "--target", "score", "--task", "classification", "--output", out) == 0
    df.assign(score=df.score.map({1.5: "low", 2.5: "high"})).to_csv(path, index=False)
    assert _run(path, "--target", "score", "--output", tmp_path / "t.csv") == 0
    numbers, text = pd.read_csv(out), pd.read_csv(tmp_path / "t.csv")
    assert set(numbers["predicted"].astype(str)) <= {"1.5", "2.5"}
    # values that differ in the 7th digit stay two classes
    df.assign(score=df.score.map({1.5: 0.1234561, 2.5: 0.1234562})).to_csv(path, index=False)
    assert _run(path, "--target", "score", "--task", "classification", "--output", out) == 0
    assert set(pd.read_csv(out)["predicted"]) <= {0.1234561, 0.1234562}
    np.testing.assert_allclose(np.sort(np.abs(numbers["self_influence"])),
                               np.sort(np.abs(text["self_influence"])), rtol=1e-6)


def test_whole_numbers_beyond_64_bits_are_numbers_with_a_note(tmp_path, capsys):
    """pandas keeps them as Python ints, which the model would one-hot encode as text."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=60)
    big = [10**25 + k * 10**24 for k in rng.integers(0, 3, 60).tolist()]
    lines = ["big,a,y"] + [f"{b},{v:.4f},{int(v + rng.normal() > 0)}"
                           for b, v in zip(big, a)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.csv"
    assert _run(path, "--target", "y", "--output", out) == 0
    printed = capsys.readouterr().out
    assert "2 feature columns" in printed
    assert "'big' holds whole numbers beyond 64 bits" in printed
    ranking = pd.read_csv(out)
    assert ranking["big"].dtype.kind == "f" and ranking["big"].min() >= 1e25
    # True/False with blanks (bools are ints to Python) are not taken for wide numbers
    lines = ["flag,a,y"] + [f"{['True', 'False', ''][i % 3]},{v:.4f},{int(v > 0)}"
                            for i, v in enumerate(a)]
    path.write_text("\n".join(lines) + "\n")
    assert _run(path, "--target", "y") == 0
    assert "beyond 64 bits" not in capsys.readouterr().out


def test_cooks_distance_without_enough_rows_is_said_not_a_fit_failure(tmp_path, capsys):
    """8 rows, 10 parameters: the fit is fine, only the dispersion has no degrees of
    freedom. Ranked by Cook's distance: one line saying so (it said "the model could
    not be fitted: ValueError"); ranked by self-influence: the column is left out."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=8), "r": list("abcdefgh"),
                       "amount": rng.gamma(2.0, 2.0, 8)})
    path = tmp_path / "tiny.csv"
    df.to_csv(path, index=False)
    assert _run(path, "--target", "amount", "--model", "gamma") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skinfluence audit: error: Cook's distance is not defined here: ")
    assert "n - P = -2" in err and "could not be fitted" not in err
    assert _run(path, "--target", "amount", "--model", "gamma", "--rank", "self-influence",
                "--output", tmp_path / "r.csv") == 0
    assert "note: no Cook's distance column" in capsys.readouterr().out
    assert "cooks_distance" not in pd.read_csv(tmp_path / "r.csv").columns
