import pytest
from conftest import write_csv, write_jsonl
from edge_compress.compress.data import load_text_data, map_labels, read_rows, sibling_train_file
from edge_compress.compress.errors import CompressError

L2I = {"negative": 0, "neutral": 1, "positive": 2}


def test_csv_with_commas_and_quotes(tmp_path):
    path = write_csv(tmp_path / "d.csv", [('He said "great", then left', "positive"), ("meh", "neutral")])
    data = load_text_data(str(path), L2I, 3)
    assert data.texts == ['He said "great", then left', "meh"]
    assert data.labels == [2, 1]


def test_raw_tsv_with_quote_characters(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('sentence\tlabel\n"Great" he said\t2\nit\'s a "fine" film\t1\n"quoted, fully"\t0\n')
    data = load_text_data(str(path), L2I, 3)
    assert data.texts == ['"Great" he said', 'it\'s a "fine" film', "quoted, fully"]
    assert data.labels == [2, 1, 0]
    assert data.text_column == "sentence"


def test_csv_style_quoted_tsv_is_unquoted(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('text\tlabel\n"He said ""hi"""\tpositive\n')
    assert load_text_data(str(path), L2I, 3).texts == ['He said "hi"']


def test_jsonl_and_custom_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"body": "good", "y": "Positive"}, {"body": "bad", "y": 0}])
    data = load_text_data(str(path), L2I, 3, text_column="body", label_column="y")
    assert data.labels == [2, 0]  # case-insensitive names, int ids


def test_unknown_labels_name_the_labels_and_the_fix(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("x", "positive"), ("y", "angry"), ("z", "7")])
    with pytest.raises(CompressError) as err:
        load_text_data(str(path), L2I, 3)
    assert "'angry'" in err.value.message and "'7'" in err.value.message and "label2id" in err.value.hint


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(CompressError, match="empty|no data rows"):
        load_text_data(str(path), L2I, 3)


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(CompressError, match="not found"):
        read_rows(str(tmp_path / "nope.csv"))
    path = write_csv(tmp_path / "d.csv", [("x", "positive")], header=("words", "label"))
    with pytest.raises(CompressError, match="which column"):
        load_text_data(str(path), L2I, 3)
    with pytest.raises(CompressError, match="no column 'txt'"):
        load_text_data(str(path), L2I, 3, text_column="txt")


def test_bad_jsonl_line_is_located(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{oops\n')
    with pytest.raises(CompressError, match=r"d.jsonl:2"):
        read_rows(str(path))


def test_single_class_eval_set_warns(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", [("x", "positive"), ("y", "positive")])
    load_text_data(str(path), L2I, 3)
    assert "same label" in capsys.readouterr().err


def test_empty_texts_are_skipped_with_a_warning(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", [("x", "positive"), ("  ", "negative"), ("y", "neutral")])
    assert load_text_data(str(path), L2I, 3).labels == [2, 1]
    assert "skipped 1 rows" in capsys.readouterr().err


def test_digit_labels_out_of_range_are_rejected():
    with pytest.raises(CompressError):
        map_labels(["3"], L2I, 3, "x")


def test_sibling_train_file(tmp_path):
    write_csv(tmp_path / "train.csv", [("x", "positive")])
    assert sibling_train_file(str(tmp_path / "eval.csv")) is None  # eval file itself missing
    write_csv(tmp_path / "eval.csv", [("x", "positive")])
    assert sibling_train_file(str(tmp_path / "eval.csv")) == str(tmp_path / "train.csv")



def test_a_multiline_csv_text_with_a_comma_is_one_text_not_swallowed_rows(tmp_path):
    """A valid CSV field spanning two lines, its second line holding a comma (as in Rotten Tomatoes), is one text;
    only a quote that swallows further rows is refused (tests/test_errors.py covers that)."""
    import csv

    from edge_compress.compress.data import read_rows

    rows = [("a plain review", "fresh"),
            ("'The film, in its own remarkably\nobservational way, gradually transforms into a horror film.'", "fresh"),
            ("too skewed to ever get a hold on", "rotten")]
    path = tmp_path / "eval.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    read, _ = read_rows(str(path))
    assert [(r["text"], r["label"]) for r in read] == rows
