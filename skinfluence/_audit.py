"""``python -m skinfluence audit data.csv --target COLUMN``: rank a CSV's rows by self-influence.

Fits a default pipeline (numeric columns: median imputation and scaling;
other columns: most-frequent imputation and one-hot encoding) with an
influence-aware model, ranks the rows by self-influence -- the rows the model
bends towards most: likely label errors and outliers -- and prints the most
suspicious ones with their labels, row numbers (1 = first data row after the
header) and values.

Columns that identify rows instead of describing them (a saved pandas index,
an ``id`` column, names or other nearly-all-distinct text) are left out of the
features and named in one note line; ``--drop``, ``--keep`` and
``--index-col`` override the detection. Every problem with the input is one
:class:`AuditError` line: the command line prints it and exits with code 2.
"""

import codecs
import csv
import difflib
import io
import os
import re
import shlex
import sys
import warnings

import numpy as np

from .explain import explain

#: Larger magnitudes overflow float64 when squared (scaling, Hessians).
TOO_LARGE = 1e150
#: Encodings tried in turn; latin-1 decodes any byte string.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
#: File signatures of formats that are not CSV text, with what to call them.
SIGNATURES = {
    b"\x89PNG": "it looks like a PNG image",
    b"\xff\xd8\xff": "it looks like a JPEG image",
    b"GIF8": "it looks like a GIF image",
    b"%PDF-": "it looks like a PDF document",
    b"PK\x03\x04": "it looks like a zip archive, e.g. an Excel .xlsx workbook: save it as CSV",
    b"\xd0\xcf\x11\xe0": "it looks like an Office document, e.g. an Excel .xls workbook: "
                          "save it as CSV",
    b"\x1f\x8b": "it looks like gzip data: name the file .csv.gz to read it",
    b"BZh": "it looks like bzip2 data: name the file .csv.bz2 to read it",
    b"\xfd7zXZ\x00": "it looks like xz data: name the file .csv.xz to read it",
    b"\x28\xb5\x2f\xfd": "it looks like zstd data",
    b"PAR1": "it looks like a Parquet file",
    b"ARROW1": "it looks like an Arrow/Feather file",
    b"SQLite format 3\x00": "it looks like an SQLite database",
    b"\x93NUMPY": "it looks like a NumPy .npy file",
}
#: Case-insensitive identifier names: ``id``, ``customer_id``, ``ID number``, ``uuid``...
_ID_NAME = re.compile(r"(?i)(.*[\s_.\-])?(id|uuid|guid)([\s_.\-].*)?")
#: camelCase identifier names: ``PassengerId``, ``userID``.
_CAMEL_ID_NAME = re.compile(r".*[a-z0-9](Id|ID)")
_UNNAMED = re.compile(r"Unnamed: (\d+)")


class AuditError(Exception):
    """A problem with the input file, reported as one line."""


def _count(n, noun):
    """``"1 missing value"``, ``"3 missing values"``."""
    return f"{int(n)} {noun}{'' if n == 1 else 's'}"


def _one_line(text):
    """``text`` with its line breaks replaced by spaces."""
    return " ".join(str(text).splitlines()).strip()


def _pipeline(X, task, model):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from .glm import InfluenceGammaRegressor, InfluencePoissonRegressor, \
        InfluenceTweedieRegressor
    from .linear_model import InfluenceLogisticRegression, InfluenceRidge
    from .svm import SmoothHingeSVC

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    pre = ColumnTransformer(
        [("num", numeric, make_column_selector(dtype_include=np.number)),
         ("cat", categorical, make_column_selector(dtype_exclude=np.number))],
        sparse_threshold=0.0,
    )
    glm = dict(alpha=1e-4, solver="newton-cholesky", tol=1e-10, max_iter=200)
    if model == "ridge":
        est = InfluenceRidge(alpha=1.0)
    elif model == "poisson":
        est = InfluencePoissonRegressor(**glm)
    elif model == "gamma":
        est = InfluenceGammaRegressor(**glm)
    elif model == "tweedie":
        est = InfluenceTweedieRegressor(power=1.5, **glm)
    elif model == "svm":
        est = SmoothHingeSVC(t=0.1)
    else:
        est = InfluenceLogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)
    return make_pipeline(pre, est)


# --------------------------------------------------------------- options
def _check_top(top):
    if top < 1:
        raise AuditError(f"--top must be a positive number of rows, got {top}")


def _check_output(output, path):
    """Refuse an ``--output`` that cannot be written, before any work is done.

    Opens the file for appending (which changes nothing in an existing file)
    and removes it again if it did not exist before.
    """
    if os.path.isdir(output):
        raise AuditError(f"--output {output} is a directory; give a file name")
    folder = os.path.dirname(output) or "."
    if not os.path.isdir(folder):
        problem = (f"{folder} is not a directory" if os.path.exists(folder)
                   else f"the directory {folder} does not exist")
        raise AuditError(f"--output {output}: {problem}")
    existed = os.path.exists(output)
    if existed and os.path.exists(path) and os.path.samefile(output, path):
        raise AuditError(f"--output {output} is the input file; writing the ranking "
                         "there would overwrite the data")
    try:
        with open(output, "a"):
            pass
    except OSError as exc:
        raise AuditError(f"cannot write --output {output}: {exc.strerror}") from exc
    if not existed:
        os.remove(output)


def _require(name, columns, what, path):
    """Refuse a column ``name`` that is not in ``columns``, suggesting the closest."""
    if name in columns:
        return
    names = [str(c) for c in columns]
    msg = f"{what} {name!r} not in {path}"
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.75)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    shown = ", ".join(names[:25]) + (f", ... ({len(names) - 25} more)" if len(names) > 25 else "")
    msg += f"; columns are: {shown}"
    separator = next((sep for sep in ";\t|" if sep in names[0]), None) if len(names) == 1 \
        else None
    if separator is not None:
        msg += (f" (a single column: the file looks separated by {separator!r}, not "
                "commas; save it as a comma-separated CSV)")
    raise AuditError(msg)


def _check_choices(df, path, target, drop, keep, index_col):
    """Refuse column options that name unknown columns or contradict each other."""
    _require(target, df.columns, "target column", path)
    if index_col is not None:
        _require(index_col, df.columns, "--index-col", path)
    for name in drop:
        _require(name, df.columns, "--drop column", path)
    for name in keep:
        _require(name, df.columns, "--keep column", path)
    if index_col == target:
        raise AuditError(f"--index-col and --target are both {target!r}; the row labels "
                         "cannot be the target")
    if target in drop:
        raise AuditError(f"--drop names the target column {target!r}")
    both = [name for name in drop if name in keep]
    if both:
        raise AuditError(f"{both[0]!r} is given to both --drop and --keep")


# --------------------------------------------------------------- reading
def _read_bytes(path):
    """The file's bytes, decompressed when the name ends in .gz, .bz2, .xz or .zip."""
    if os.path.isdir(path):
        raise AuditError(f"{path} is a directory, not a CSV file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise AuditError(f"no such file: {path}") from exc
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror}") from exc
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gz", ".bz2", ".xz", ".zip"):
        return data
    try:
        return _decompress(data, ext, path)
    except AuditError:
        raise
    except Exception as exc:  # zlib/lzma/zip errors have no common base class
        raise AuditError(f"cannot decompress {path}: {_one_line(exc)}") from exc


def _decompress(data, ext, path):
    import bz2
    import gzip
    import lzma
    import zipfile

    if ext == ".gz":
        return gzip.decompress(data)
    if ext == ".bz2":
        return bz2.decompress(data)
    if ext == ".xz":
        return lzma.decompress(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist()
                 if not n.endswith("/") and not n.startswith("__MACOSX/")]
        if len(names) != 1:
            raise AuditError(f"{path} holds {len(names)} files; an audit reads a zip "
                             "holding exactly one CSV file")
        return archive.read(names[0])


def _binary_kind(data):
    """What a non-text byte string looks like, or None for text."""
    for signature, kind in SIGNATURES.items():
        if data.startswith(signature):
            return kind
    if b"\x00" in data:
        return "it contains NUL bytes"
    head = data[:8192]
    control = sum(head.count(bytes([b])) for b in (*range(9), *range(14, 32), 127))
    if head and control > 0.1 * len(head):
        return "it is mostly control characters"
    return None


def _decode(data, path):
    """``(text, encoding)``: UTF-8 (with or without BOM), then cp1252, then latin-1."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise AuditError(f"{path} starts like UTF-16 text but cannot be decoded") from exc
    kind = _binary_kind(data)
    if kind is not None:
        raise AuditError(f"{path} is not a text CSV file ({kind})")
    try:
        return data.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        first = exc.start
    lenient = data.decode("utf-8-sig", errors="replace")
    if re.search("[^\x00-\x7f\ufffd]", lenient):
        # UTF-8 text (its accents decode) with a few stray bytes of another encoding:
        # read as cp1252 those bytes only, not the whole file (every accent garbled)
        row = data[:first].count(b"\n")  # 0: the header, 1: the first data row
        return data.decode("utf-8-sig", errors="cp1252_bytes"), f"utf-8-mixed:{row}"
    for encoding in ENCODINGS[1:]:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def _cp1252_bytes(exc):
    """A decoding error handler: the bytes UTF-8 cannot read, read as cp1252 (latin-1
    for the five bytes cp1252 leaves undefined)."""
    bad = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in bad), \
        exc.end


codecs.register_error("cp1252_bytes", _cp1252_bytes)


def _check_ragged(text, path):
    """Refuse rows whose number of fields differs from the header's.

    pandas fills short rows with missing values and, when every data row has
    one extra field, silently turns the first column into the index; both
    usually mean a stray comma or an unquoted text field.
    """
    rows = csv.reader(io.StringIO(text, newline=""))
    header = None
    try:
        for fields in rows:
            if len(fields) <= 1 and not "".join(fields).strip():
                continue  # blank line, skipped by pandas too
            if header is None:
                header, header_line = len(fields), rows.line_num
                _check_header_names(fields, path)
                separator = next((c for c in ";\t|" if c in "".join(fields)), None)
                continue
            if len(fields) != header:
                hint = ("a stray comma or an unquoted text field?" if separator is None
                        else f"the file looks separated by {separator!r}, not commas "
                        "(decimal commas too?): save it as a comma-separated CSV")
                raise AuditError(
                    f"{path}: line {rows.line_num} has {len(fields)} fields but the header "
                    f"(line {header_line}) has {header}; {hint}"
                )
    except csv.Error:
        return  # leave the verdict to pandas' parser


def _check_header_names(names, path):
    """Refuse a header that names one column twice: pandas would call the second
    ``name.1`` and it would be a feature (a second target column leaks the target)."""
    seen = {}
    for position, name in enumerate(names, start=1):
        key = name.strip()  # 'label' and 'label ' are one column to a reader
        if key and key in seen:
            raise AuditError(
                f"{path}: the header names {key!r} twice (columns {seen[key]} and "
                f"{position}{'' if name == names[seen[key] - 1] else ', with spaces'}); "
                "rename or remove one")
        seen.setdefault(key, position)


def _parse(text, path):
    import pandas as pd

    if not text.strip():
        raise AuditError(f"{path} is empty")
    _check_ragged(text, path)
    try:
        df = pd.read_csv(io.StringIO(text), low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise AuditError(f"{path} is empty") from exc
    except Exception as exc:  # ParserError and whatever else pandas makes of a bad file
        msg = re.sub(r"^Error tokenizing data\. (C error: )?", "", _one_line(exc))
        if "EOF inside string" in msg:
            msg += " (a quote that is never closed?)"
        line = re.search(r"\bline (\d+)", msg)
        where = f" at line {line[1]}" if line else ""
        raise AuditError(f"cannot parse {path}{where}: {msg}") from exc
    if df.empty:
        raise AuditError(f"{path} has a header but no data rows")
    return df


def _load(path):
    """``(DataFrame, notes)`` for the CSV file at ``path``."""
    try:
        import pandas  # noqa: F401
    except ImportError as exc:  # pragma: no cover - optional
        raise AuditError("the audit reads CSV files with pandas: pip install pandas") from exc
    text, encoding = _decode(_read_bytes(path), path)
    notes = []
    if encoding.startswith("utf-8-mixed"):
        row = int(encoding.split(":")[1])
        notes.append(f"note: {path} is UTF-8 but for bytes that are not (first "
                     f"{f'on row {row}' if row else 'in the header'}); read those as cp1252")
    elif encoding not in ("utf-8-sig", "utf-16"):
        notes.append(f"note: {path} is not UTF-8; read it as {encoding}")
    return _parse(text, path), notes


# --------------------------------------------------------------- identifier columns
def _is_counter(col):
    """Integers 0..n-1 or 1..n in order: a saved row index."""
    import pandas as pd

    if not pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = col.to_numpy()
    return bool(values[0] in (0, 1) and np.array_equal(values, values[0] + np.arange(len(col))))


def _is_text(col):
    """Strings that are nearly all distinct (>= 95%, at least 20 of them): names, free text."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = col.dropna()
    return len(values) >= 20 and values.nunique() >= 0.95 * len(values)


def _identifier_reason(name, col, position, leading_unnamed):
    """``(kind, reason)`` when column ``name`` identifies rows rather than describing them.

    ``kind`` is "index" (a saved pandas index: may label the rows), "id",
    "text" or "empty"; returns None for an ordinary column.
    """
    unnamed = _UNNAMED.fullmatch(str(name))
    if unnamed and col.isna().all():
        return "empty", "empty and without a header"
    if unnamed and int(unnamed[1]) == position < leading_unnamed:
        return "index", "saved pandas index"
    if _is_counter(col):
        start = int(col.iloc[0])
        return "index", f"numbers {start}..{start + len(col) - 1} in order: a saved index"
    if str(name) in ("index", "level_0") and col.is_unique:
        return "index", "saved pandas index"
    if (_ID_NAME.fullmatch(str(name)) or _CAMEL_ID_NAME.fullmatch(str(name))) \
            and col.notna().all() and col.is_unique:
        return "id", "id, all values distinct"
    if _is_text(col):
        return "text", "nearly all distinct text: names or free text"
    return None


def _check_numbers_with_stray_cells(df, skip):
    """Refuse a column of numbers with a few cells that are not (``1,5``, ``12 kg``): read
    as text it would be left out as names or one-hot encoded, silently."""
    import pandas as pd

    for name, col in df.items():
        if name in skip or pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(
                col):
            continue
        present = col.dropna()
        if len(present) < 10:
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        stray = numbers.isna()
        if 0 < stray.sum() <= 0.05 * len(present):
            raise _stray_cells(name, col, stray, "numbers", "a decimal comma? a unit?")


def _wide_integers(df, skip):
    """Columns of whole numbers beyond 64 bits, which pandas keeps as Python ints
    (text to the model: one-hot encoded), read as floating-point numbers; their names."""
    wide = []
    for name, col in df.items():
        if name in skip or col.dtype != object:
            continue
        present = col.dropna()
        if len(present) and all(isinstance(v, int) and not isinstance(v, bool)
                                for v in present) and any(abs(v) >= 2**63 for v in present):
            df[name] = col.astype(float)
            wide.append(name)
    return wide


def _stray_cells(name, col, stray, kind, guess):
    """The error for a column of ``kind`` but for the cells ``stray`` (a boolean Series
    on ``col``'s index), naming the first by its row."""
    first = stray.index[np.argmax(stray.to_numpy())]
    count = int(stray.sum())
    return AuditError(
        f"column {name!r} holds {kind} but for {_count(count, 'cell')} (first at row "
        f"{first + 1}: {col[first]!r}); fix {'it' if count == 1 else 'them'} ({guess}), "
        f"leave the column out with --drop {shlex.quote(str(name))}, or keep it as text "
        f"categories with --keep {shlex.quote(str(name))}"
    )


def _as_dates(col):
    """The column as datetimes when every present cell is text with a four-digit year
    and a separator that pandas reads as a date (one format), else None (version
    numbers such as ``1.2.3`` are not dates)."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(col):
        return col
    parsed, bad = _parse_dates(col)
    return parsed if parsed is not None and not bad.any() else None


#: A column of text whose cells read as dates but for at most this share is a column
#: of dates with stray cells (refused by row), not text (one-hot encoded: a column of
#: 300 dates, 10% "unknown", gave 181 columns).
DATES_STRAY_SHARE = 0.2


def _parse_dates(col):
    """``(datetimes, unreadable)`` for a column of text that reads as dates but for at
    most ``DATES_STRAY_SHARE`` of its present cells (NaT there, flagged in
    ``unreadable``), else
    ``(None, None)``. Of the two orders (``12/31/2020``, ``31/12/2020``) the one that
    reads more cells wins, month first on a tie."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None, None
    present = col.dropna()
    if len(present) < 5 or not all(isinstance(v, str) for v in present):
        return None, None
    dated = (present.str.contains(r"(?<!\d)[12]\d{3}(?!\d)")
             & present.str.contains(r"[-/.:]"))
    if (~dated).sum() > DATES_STRAY_SHARE * len(present):
        return None, None
    best = None
    for dayfirst in (False, True):  # 12/31/2020, else 31/12/2020
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' notes on inferring the format
            try:
                # in UTC: offsets that change with daylight saving (+0100, +0200) are
                # one column of instants, and days between them are the same
                parsed = pd.to_datetime(col.where(col.index.isin(present.index[dated])),
                                        errors="coerce", dayfirst=dayfirst, utc=True)
            except (ValueError, TypeError, OverflowError):
                continue
        bad = parsed.isna() & col.notna()
        if best is None or bad.sum() < best[1].sum():
            best = (parsed, bad)
    if best is None or best[1].sum() > DATES_STRAY_SHARE * len(present):
        return None, None
    return best


def _check_dates_with_stray_cells(df, skip):
    """Refuse a column of dates with a few cells that are not (``2021-02-30``, ``n/a``):
    read as text it would be one-hot encoded (hundreds of columns) or left out."""
    for name, col in df.items():
        if name in skip:
            continue
        parsed, bad = _parse_dates(col)
        if parsed is None or not bad.any():
            continue
        raise _stray_cells(name, col, bad, "dates", "an impossible date? another format?")


def _date_columns(df, skip):
    """The columns of dates (``2021-03-04``), which the model reads as days since the
    earliest; a column of distinct dates would otherwise be left out as text, and
    repeated ones one-hot encoded."""
    return [name for name, col in df.items()
            if name not in skip and _as_dates(col) is not None]


def _days(col):
    dates = _as_dates(col)
    return (dates - dates.min()) / np.timedelta64(1, "D")


def _identifiers(df, skip):
    """``{column: (kind, reason)}`` for the columns that identify rows, except ``skip``."""
    leading_unnamed = 0
    while leading_unnamed < df.shape[1] and _UNNAMED.fullmatch(str(df.columns[leading_unnamed])):
        leading_unnamed += 1
    found = {}
    for position, (name, col) in enumerate(df.items()):
        if name not in skip:
            kind = _identifier_reason(name, col, position, leading_unnamed)
            if kind:
                found[name] = kind
    return found


# --------------------------------------------------------------- labels and features
def _labels(df, found, index_col):
    """``(labels, column name in the ranking, detected column used)`` for the rows.

    The ``--index-col`` column, else the first detected saved index, else none.
    """
    if index_col is not None:
        labels = df[index_col]
        if not labels.is_unique or labels.isna().any():
            repeated = int((labels.duplicated(keep="first") | labels.isna()).sum())
            raise AuditError(f"--index-col {index_col!r} does not identify the rows: "
                             f"{_count(repeated, 'value')} repeated or missing; pick a column "
                             "with one distinct value per row")
        return labels, index_col, None
    saved = [name for name, (kind, _) in found.items() if kind == "index"]
    if not saved:  # else an identifier column (e.g. a named index saved by to_csv)
        saved = [name for name, (kind, _) in found.items()
                 if kind in ("id", "text") and df[name].is_unique and df[name].notna().all()]
    if not saved:
        return None, None, None
    name = "index" if _UNNAMED.fullmatch(str(saved[0])) else saved[0]
    return df[saved[0]], name, saved[0]


def _is_float(col):
    return col.dtype.kind == "f"


def _drop_missing_target(df, path, target, dropna):
    """``(df, rows dropped)``: refuses a missing target unless ``dropna``."""
    missing = df[target].isna().to_numpy()
    count = int(missing.sum())
    if not count:
        return df, 0
    if not dropna:
        raise AuditError(f"target column {target!r} has {_count(count, 'missing value')} "
                         f"(first at row {np.argmax(missing) + 1}); leave those rows out "
                         "with --dropna")
    if missing.all():
        raise AuditError(f"every row of {path} has a missing target {target!r}")
    df = df[~missing].copy()
    y = df[target]
    if _is_float(y) and np.all(np.mod(y.to_numpy(), 1) == 0):
        df[target] = y.astype(np.int64)  # the missing values had made whole labels floats
    return df, count


def _features(df, path, target, drop, keep, index_col, found):
    """The feature columns: all but the target, ``drop``, detected identifiers and labels."""
    leave_out = [*drop, *found]
    if index_col is not None and index_col not in keep:
        leave_out.append(index_col)
    X = df.drop(columns=[c for c in df.columns if c == target or c in leave_out])
    if X.shape[1] == 0:
        left = ", ".join(dict.fromkeys(repr(c) for c in leave_out))
        raise AuditError(f"{path} has no feature columns besides {target!r}"
                         + (f" after leaving out {left}" if left else ""))
    return X


# --------------------------------------------------------------- checks
def _check_finite(col, what, rows, advice):
    """Refuse infinite values, and values whose square overflows float64."""
    values = col.to_numpy(dtype=float)
    bad = np.isinf(values)
    if bad.any():
        raise AuditError(f"{what} has {_count(bad.sum(), 'infinite value')} (first at row "
                         f"{rows[np.argmax(bad)]}: {values[bad][0]}); {advice}")
    big = np.abs(np.nan_to_num(values)) > TOO_LARGE
    if big.any():
        raise AuditError(f"{what} has values too large (abs > 1e150, first at row "
                         f"{rows[np.argmax(big)]}: {values[big][0]:g}); {advice}")


def _check_values(X, y, target, rows):
    """Refuse empty or non-finite feature columns and a non-finite target."""
    import pandas as pd

    for name, col in X.items():
        drop = f"--drop {shlex.quote(str(name))}"
        if col.isna().all():
            raise AuditError(f"feature column {name!r} is empty (every value is missing); "
                             f"leave it out with {drop}")
        if pd.api.types.is_float_dtype(col):
            _check_finite(col, f"feature column {name!r}", rows,
                          f"fix or rescale the column, or leave it out with {drop}")
    if pd.api.types.is_float_dtype(y):
        _check_finite(y, f"target column {target!r}", rows, "fix or rescale the target")


REGRESSION_MODELS = {
    # model: (what it fits, the domain of the target as a test and in words)
    "ridge": ("least squares", None, None),
    "poisson": ("a Poisson GLM, log link", lambda y: y >= 0, "counts >= 0"),
    "gamma": ("a gamma GLM, log link", lambda y: y > 0, "positive values"),
    "tweedie": ("a Tweedie GLM, power 1.5, log link", lambda y: y >= 0,
                "values >= 0 (zeros allowed)"),
}
CLASSIFIERS = {"logistic", "svm"}


def _resolve_model(task, model):
    """``(task, model)`` with the defaults filled in; a model of the other task is refused."""
    if model is None:
        return task, ("ridge" if task == "regression" else "logistic")
    if model in REGRESSION_MODELS:
        if task == "classification":
            raise AuditError(f"--model {model} is a regression model; use --task regression "
                             "(or --model logistic / svm to classify)")
        return "regression", model
    if task == "regression":
        raise AuditError(f"--model {model} is a classifier; for --task regression use --model "
                         "ridge, poisson, gamma or tweedie")
    return task, model


def _check_numeric(y, target, model, rows):
    """A regression model's target must be numbers; name the first that is not."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(y):
        return
    bad = pd.to_numeric(y, errors="coerce").isna().to_numpy()
    first = int(np.flatnonzero(bad)[0]) if bad.any() else 0
    raise AuditError(f"target column {target!r} is not numeric (e.g. {y.iloc[first]!r} in row "
                     f"{rows[first]}), but --model {model} regresses on numbers; fix those "
                     "values")


def _check_domain(y, target, model, rows):
    """Refuse, in one line, targets outside the chosen family's domain."""
    _, inside, words = REGRESSION_MODELS[model]
    if inside is None:
        return
    bad = ~inside(y.to_numpy(dtype=float))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        values = y.to_numpy(dtype=float)
        other = ("--model tweedie (zeros allowed)" if model == "gamma" and (values >= 0).all()
                 else "--model ridge")
        raise AuditError(
            f"target column {target!r} has {_count(bad.sum(), 'value')} outside what --model "
            f"{model} fits ({words}), e.g. {y.iloc[first].item()!r} in row {rows[first]}; use "
            f"{other}, or fix those values")
    if model != "ridge" and not (y.to_numpy(dtype=float) > 0).any():
        raise AuditError(f"target column {target!r} is zero on every row: --model {model} "
                         "needs some positive values")


def _resolve_task(y, target, task):
    """The task to run (``task`` may be "auto"), refusing targets that do not fit it."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(y)
    k = y.nunique()
    fractional = pd.api.types.is_float_dtype(y) and bool((y % 1 != 0).any())
    if task == "auto":
        if fractional and k <= 20:
            shown = ", ".join(f"{v:g}" for v in np.sort(y.unique())[:4])
            raise AuditError(f"target column {target!r} holds {k} distinct numbers with "
                             f"fractions ({shown}{', ...' if k > 4 else ''}): say --task "
                             "regression to regress on them, or --task classification to "
                             "treat each value as a class")
        task = "regression" if numeric and k > 20 else "classification"
    if task == "regression" and not numeric:
        raise AuditError(f"target column {target!r} is not numeric, so it cannot be regressed "
                         "on; use --task classification")
    if task == "classification":
        if k < 2:
            raise AuditError(f"target column {target!r} has a single class "
                             f"({getattr(y.iloc[0], 'item', lambda: y.iloc[0])()!r}); "
                             "an audit needs at least two")
        if pd.api.types.is_float_dtype(y) and k > 20 and (y % 1 != 0).any():
            raise AuditError(f"target column {target!r} looks continuous ({k} distinct values, "
                             "not all whole numbers); use --task regression")
        if k > 20 and k > len(y) / 2:
            raise AuditError(f"target column {target!r} has {k} distinct values in {len(y)} "
                             "rows: too many classes to audit (is it an identifier?)")
    return task


# --------------------------------------------------------------- fit and rank
def _cell(value):
    """A cell as a message quotes it: text in quotes, numbers as written, an empty cell
    as such (not ``np.float64(nan)``)."""
    import pandas as pd

    if isinstance(value, str):
        return repr(value)
    if pd.isna(value):
        return "an empty cell"
    return str(value)


def _weights(col, name, rows):
    """The --weight column as finite weights >= 0, or one line saying which row is not."""
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AuditError(f"--weight column {name!r} needs finite numbers >= 0; it has "
                         f"{_count(bad.sum(), 'other value')} (first: {_cell(col.iloc[i])} in "
                         f"row {rows[i]})")
    if not (values > 0).any():
        raise AuditError(f"--weight column {name!r} is zero on every row")
    return values


def _fit(X, y, task, model, weights=None, dates=(), rank="self-influence"):
    """``(self_influence, predicted, Cook's distance or None, warning lines)``; fit errors
    become an AuditError, and so does a Cook's distance that is not defined when it
    ranks (else its column is left out, with a line saying why)."""
    cooks, why_no_cooks = None, None
    flags = [c for c in X.columns if X[c].dtype == bool]
    if flags:  # True/False columns are numbers 1/0 to the model (the imputer refuses bool)
        X = X.astype({c: np.int64 for c in flags})
    dated = [c for c in dates if c in X.columns]  # found once, by _date_columns
    if dated:  # dates are days since the earliest to the model (shown as given)
        X = X.assign(**{str(c): _days(X[c]) for c in dated})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipe = _pipeline(X, task, model)
            fit_params = {} if weights is None else {
                f"{pipe.steps[-1][0]}__sample_weight": weights}
            pipe.fit(X, y, **fit_params)
            exp = explain(pipe)
            si = np.asarray(exp.self_influence())
            predicted = pipe.predict(X)
        except Exception as exc:
            raise AuditError(f"the model could not be fitted: {type(exc).__name__}: "
                             f"{_one_line(exc)}") from exc
        if task == "regression":
            try:
                cooks = np.asarray(exp.cooks_distance())
            except ValueError as exc:  # too few rows, or an exact fit: no dispersion
                if rank == "cooks":
                    raise AuditError(f"Cook's distance is not defined here: "
                                     f"{_one_line(exc)}") from exc
                why_no_cooks = f"note: no Cook's distance column: {_one_line(exc)}"
    if not np.isfinite(si).all():
        raise AuditError("the self-influence is not finite (the fit failed numerically); "
                         "check the data for extreme values")
    lines = dict.fromkeys(f"warning: {w.category.__name__}: {_one_line(w.message)}"
                          for w in caught)
    if why_no_cooks:
        lines[why_no_cooks] = None
    return si, predicted, cooks, list(lines)


def _fresh(name, taken):
    """``name``, with underscores appended until it is not in ``taken`` (which is updated)."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _ranking(X, y, target, rows, labels, label_name, si, predicted, cooks=None,
             rank="self-influence", weights=None):
    """Rows sorted by self-influence ascending (most negative, most suspicious, first),
    or by Cook's distance descending; the ``--weight`` column (a Series) after the
    prediction, since a suspicious row's weight is part of what makes it so."""
    order = np.argsort(si if rank == "self-influence" else -cooks, kind="stable")
    ranking = X.iloc[order].reset_index(drop=True)
    taken = {*map(str, X.columns), str(target)}
    if weights is not None:
        taken.add(str(weights.name))
    front = {}
    if labels is not None:
        front[_fresh(str(label_name), taken)] = labels.to_numpy()[order]
    front[_fresh("row", taken)] = rows[order]
    front[_fresh("self_influence", taken)] = si[order]
    if cooks is not None:
        front[_fresh("cooks_distance", taken)] = cooks[order]
    front[target] = y.to_numpy()[order]
    front[_fresh("predicted", taken)] = np.asarray(predicted)[order]
    if weights is not None:
        front[weights.name] = weights.to_numpy()[order]
    for i, (name, values) in enumerate(front.items()):
        ranking.insert(i, name, values)
    return ranking


def _describe(found, label_from):
    """One note line naming the left-out identifier columns."""
    parts = []
    for name, (_, reason) in found.items():
        if name == label_from:
            reason += ", used as the row label"
        parts.append(f"{name!r} ({reason})")
    return ("note: left out of the features: " + ", ".join(parts)
            + "; use --keep COL to use one as a feature")


def audit(path, target, *, task="auto", model=None, top=10, output=None, drop=(),
          keep=(), index_col=None, dropna=False, rank=None, weight=None, out=print):
    """Run the audit; returns the full ranking as a DataFrame.

    Parameters
    ----------
    path : str
        A CSV file with a header row (UTF-8, cp1252 or latin-1; ``.gz``,
        ``.bz2``, ``.xz`` and single-file ``.zip`` are decompressed).
    target : str
        The column to predict.
    task : {"auto", "classification", "regression"}
        ``"auto"``: regression for a numeric target with more than 20 values, or
        when ``model`` is a regression model.
    model : {"logistic", "svm", "ridge", "poisson", "gamma", "tweedie"}, optional
        The model: a classifier (default logistic) or a regression model
        (default ridge; poisson for counts, gamma for positive amounts, tweedie
        for amounts with zeros). Targets outside the family are refused.
    weight : str, optional
        A column of sample weights (e.g. the exposure of a claim frequency):
        passed to the fit, not used as a feature.
    rank : {"self-influence", "cooks"}, optional
        Order of the ranking: self-influence (default for classification) or
        Cook's distance (default for regression; only there).
    top : int
        Rows to print.
    output : str, optional
        Write the full ranking to this CSV file (checked before any work).
    drop, keep : sequences of str
        Columns to leave out of the features; columns to keep as features
        although they look like row identifiers.
    index_col : str, optional
        A column of row labels: shown in the ranking, not used as a feature.
    dropna : bool
        Leave out rows with a missing target (otherwise they are refused).
    out : callable
        Prints one line.

    Raises
    ------
    AuditError
        For any problem with the options or the input, as one line.
    """
    drop, keep = list(drop), list(keep)
    _check_top(top)
    if output:
        _check_output(output, path)
    df, notes = _load(path)
    _check_choices(df, path, target, drop, keep, index_col)
    if weight is not None:
        _require(weight, df.columns, "--weight column", path)
        if weight in (target, index_col):
            raise AuditError(f"--weight {weight!r} is also the target or the row labels")
        drop = [*drop, weight]

    _check_dates_with_stray_cells(df, skip={target, index_col, weight, *drop, *keep})
    dates = _date_columns(df, skip={target, index_col, weight, *drop, *keep})
    if dates:
        notes.append(f"note: {', '.join(map(repr, dates))} read as dates: the model sees "
                     "days since the earliest")
    wide = _wide_integers(df, skip={index_col, *drop, *dates})
    if wide:
        notes.append(f"note: {', '.join(map(repr, wide))} "
                     f"{'holds' if len(wide) == 1 else 'hold'} whole numbers beyond 64 bits, "
                     "read as floating-point numbers (if they are identifiers, leave them out "
                     "with --drop)")
    _check_numbers_with_stray_cells(df, skip={target, index_col, *drop, *keep, *dates})
    found = _identifiers(df, skip={target, index_col, *drop, *keep, *dates})
    labels, label_name, label_from = _labels(df, found, index_col)
    if found:
        notes.append(_describe(found, label_from))
    df, dropped = _drop_missing_target(df, path, target, dropna)
    if dropped:
        notes.append(f"note: --dropna left out {_count(dropped, 'row')} with a missing "
                     f"{target!r}")
    y = df[target]
    labels = None if labels is None else labels.loc[df.index]
    rows = df.index.to_numpy() + 1  # 1 = first data row of the file
    X = _features(df, path, target, drop, keep, index_col, found)
    _check_values(X, y, target, rows)
    w = None if weight is None else _weights(df[weight], weight, rows)
    if task == "auto" and model in REGRESSION_MODELS:
        task = "regression"
    if model in REGRESSION_MODELS:
        _check_numeric(y, target, model, rows)
    task = _resolve_task(y, target, task)
    if task == "classification" and y.dtype.kind == "f" and (y % 1 != 0).any():
        y = y.map(lambda v: repr(float(v)))  # classes named by the shortest exact text
    task, model = _resolve_model(task, model)
    if task == "regression":
        _check_domain(y, target, model, rows)  # the family's own words first (all zero)
        if y.nunique() < 2:
            raise AuditError(f"target column {target!r} holds a single value "
                             f"({getattr(y.iloc[0], 'item', lambda: y.iloc[0])()!r}): every "
                             "fit reproduces it, so no row stands out; an audit needs a "
                             "target that varies")
    rank = rank or ("cooks" if task == "regression" else "self-influence")
    if rank == "cooks" and task != "regression":
        raise AuditError("--rank cooks is a regression diagnostic; rank a classification "
                         "by self-influence")

    si, predicted, cooks, warned = _fit(X, y, task, model, w, dates, rank)
    ranking = _ranking(X, y, target, rows, labels, label_name, si, predicted, cooks, rank,
                       None if weight is None else df[weight])
    if output:
        try:
            ranking.to_csv(output, index=False)
        except OSError as exc:
            raise AuditError(f"cannot write --output {output}: {exc.strerror}") from exc
    kind = (f"regression ({model}: {REGRESSION_MODELS[model][0]})" if task == "regression"
            else f"classification ({model})")
    out(f"{path}: {len(X)} rows, {X.shape[1]} feature columns, target {target!r}, {kind}")
    for line in notes + warned:
        out(line)
    measure = "self-influence" if rank == "self-influence" else "Cook's distance"
    out(f"The {_count(min(top, len(X)), 'row')} with the largest {measure} "
        "(most suspicious first):")
    out(ranking.head(top).to_string(index=False, max_cols=10, max_colwidth=30))
    if output:
        out(f"full ranking written to {output}")
    return ranking


def main(args):
    try:
        audit(args.csv, args.target, task=args.task, model=args.model, top=args.top,
              output=args.output, drop=args.drop, keep=args.keep, index_col=args.index_col,
              dropna=args.dropna, rank=args.rank, weight=args.weight)
    except AuditError as exc:
        print(f"skinfluence audit: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0
