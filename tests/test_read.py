"""Reading text inputs: the seed format, plain text, Markdown, datelines, encodings, bad inputs,
folder/glob expansion, and the `ingest` CLI end to end (exit status, JSON report, failures)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from datetime import date
from pathlib import Path

import pytest
from conftest import PYTHON, SEED, cli_env

from ingest.models import Article, Failure
from ingest.read import expand, read_inputs, read_path


def write(folder: Path, name: str, data: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def only_article(path: Path) -> Article:
    articles, failures = read_path(path)
    assert failures == [] and len(articles) == 1, failures
    return articles[0]


def only_failure(path: Path) -> Failure:
    articles, failures = read_path(path)
    assert articles == [] and len(failures) == 1, articles
    assert failures[0].path == str(path)
    return failures[0]


# --- the seed format -------------------------------------------------------------------------------

def test_seed_article_fields():
    art = only_article(SEED)
    assert art.published_at is not None and art.published_at.date() == date(2021, 4, 8)
    assert (art.place, art.source) == ("Islamabad", "IANS")
    assert art.title == ("Lavrov arrived in Pakistan on Tuesday for a two-day visit to discuss bilateral "
                         "and regional matters")
    assert art.summary.startswith("Lavrov arrived in Pakistan")
    assert art.summary.endswith(", reports Xinhua news agency.")
    assert art.body.startswith("Islamabad, April 8 (IANS) Visiting Russian Foreign Minister Sergei Lavrov")
    assert art.body.endswith("the world at large,\" he added.")
    assert "--IANS" not in art.body and "ksk/" not in art.body and "date 2021" not in art.body
    assert art.url == "" and art.origin == str(SEED)


def test_seed_layout_with_crlf_and_signoff_gives_agency(tmp_path):
    text = (" date 2023-11-02 Floods cut off three villages, say officials.\r\n\r\n"
            "Dhaka, Nov 2 (AFP) Floods cut off three villages on Thursday.\r\n\r\n"
            "More rain is due.\r\n\r\n--AFP\r\n")
    art = only_article(write(tmp_path, "flood.txt", text))
    assert art.title == "Floods cut off three villages"
    assert art.published_at is not None and art.published_at.date() == date(2023, 11, 2)
    assert (art.place, art.source) == ("Dhaka", "AFP")
    assert art.body == "Dhaka, Nov 2 (AFP) Floods cut off three villages on Thursday.\n\nMore rain is due."


# --- plain text and Markdown -----------------------------------------------------------------------

def test_plain_text_title_is_first_sentence(tmp_path):
    text = "The U.S. Senate on Tuesday passed the budget bill. Critics said it was rushed.\n\nMore."
    art = only_article(write(tmp_path, "senate.txt", text))
    assert art.title == "The U.S. Senate on Tuesday passed the budget bill"
    assert art.body == text and art.published_at is None and art.source == "" and art.place == ""


def test_plain_text_long_first_sentence_is_shortened_on_a_word(tmp_path):
    sentence = "Officials " + "in the northern province said " * 10 + "that the road would reopen."
    art = only_article(write(tmp_path, "long.txt", sentence))
    assert len(art.title) <= 101 and art.title.endswith("…") and art.title.startswith("Officials in the")
    assert art.title[:-1] == art.title[:-1].rstrip() and sentence.startswith(art.title[:-1])


@pytest.mark.parametrize(("first", "title"), [
    ("Floods cut off three villages, officials said.", "Floods cut off three villages"),
    ("Prices rose again, reports Xinhua news agency.", "Prices rose again"),
    ("Mr. Khan met Dr. Lee in Washington. They talked.", "Mr. Khan met Dr. Lee in Washington"),
    ("Council passes budget\n\nThe council voted.", "Council passes budget"),
])
def test_derived_titles(tmp_path, first, title):
    assert only_article(write(tmp_path, "t.txt", first)).title == title


def test_same_file_name_gives_same_id_and_different_names_differ(tmp_path):
    a = only_article(write(tmp_path, "a/story.txt", "One thing happened."))
    b = only_article(write(tmp_path, "b/story.txt", "One thing happened."))
    c = only_article(write(tmp_path, "other.txt", "One thing happened."))
    assert a.id == b.id != c.id


def test_markdown_heading_is_title(tmp_path):
    art = only_article(write(tmp_path, "bridge.md", "# Harbour bridge reopens\n\nThe bridge reopened.\n"))
    assert art.title == "Harbour bridge reopens"
    assert art.body == "The bridge reopened."


def test_markdown_front_matter(tmp_path):
    text = ("---\ntitle: \"Budget: council says yes\"\ndate: 2023-10-05T10:30:00Z\nsource: The Gazette\n"
            "url: https://gazette.example/budget\nauthor: Jane Doe\ncategory: politics\n"
            "id: budget-2023\n---\n\n"
            "The council approved the budget by seven votes to two.\n")
    art = only_article(write(tmp_path, "budget.md", text))
    assert art.title == "Budget: council says yes"
    assert art.published_at is not None and art.published_at.isoformat() == "2023-10-05T10:30:00+00:00"
    assert (art.source, art.author, art.category) == ("The Gazette", "Jane Doe", "politics")
    assert art.url == "https://gazette.example/budget" and art.id == "budget-2023"
    assert art.body == "The council approved the budget by seven votes to two."


def test_front_matter_id_that_is_not_a_valid_id_is_hashed(tmp_path):
    text = "---\nid: my story / 7\n---\nSomething happened.\n"
    first = only_article(write(tmp_path, "x.md", text))
    again = only_article(write(tmp_path, "y.txt", text))
    assert first.id == again.id and len(first.id) == 16 and " " not in first.id


def test_front_matter_url_gives_id_without_explicit_id(tmp_path):
    text = "---\nurl: https://ex.example/a\n---\nSomething happened.\n"
    assert only_article(write(tmp_path, "a.md", text)).id == only_article(write(tmp_path, "b.md", text)).id


# --- datelines ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "place", "source", "title"), [
    ("WASHINGTON (Reuters) - The U.S. Senate on Tuesday passed a spending bill. It now goes to the House.",
     "Washington", "Reuters", "The U.S. Senate on Tuesday passed a spending bill"),
    ("NEW YORK, Oct 5 (AP) — Stocks rose on Thursday as investors cheered jobs data. Bonds fell.",
     "New York", "AP", "Stocks rose on Thursday as investors cheered jobs data"),
    ("LONDON, Sept. 12 (Reuters) - Britain's economy grew 0.2% in July.",
     "London", "Reuters", "Britain's economy grew 0.2% in July"),
    ("Islamabad, April 8 (IANS) Pakistan and Russia agreed to deepen ties.",
     "Islamabad", "IANS", "Pakistan and Russia agreed to deepen ties"),
])
def test_datelines(tmp_path, text, place, source, title):
    art = only_article(write(tmp_path, "wire.txt", text + "\n"))
    assert (art.place, art.source, art.title) == (place, source, title)
    assert art.body == text


def test_organisation_acronym_is_not_a_dateline(tmp_path):
    text = "The World Health Organization (WHO) said on Monday that cases fell."
    art = only_article(write(tmp_path, "who.txt", text))
    assert (art.place, art.source) == ("", "")
    assert art.title == "The World Health Organization (WHO) said on Monday that cases fell"


def test_front_matter_source_wins_over_dateline(tmp_path):
    art = only_article(write(tmp_path, "w.md", "---\nsource: Daily Post\n---\nPARIS (AFP) - Rain fell.\n"))
    assert (art.source, art.place) == ("Daily Post", "Paris")


# --- encodings ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8-sig", "utf-16"])
def test_encodings(tmp_path, encoding):
    text = "Le café de Zürich rouvre ses portes.\n\nLes habitués sont ravis."
    if encoding == "cp1252":
        text += " Il a dit “enfin” – prix 5 €."
    art = only_article(write(tmp_path, f"cafe-{encoding}.txt", text.encode(encoding)))
    assert art.body == text
    assert art.title == "Le café de Zürich rouvre ses portes"


# --- bad inputs -----------------------------------------------------------------------------------------

def _random_high_bytes() -> bytes:
    rng = random.Random(7)
    return bytes(rng.randrange(0xA0, 0x100) for _ in range(600))  # no NUL, no C1 controls either


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary file"),
    ("noise.txt", b"abc\x00" + bytes(random.Random(1).randrange(256) for _ in range(2000)), "binary file"),
    ("controls.txt", bytes(random.Random(2).randrange(1, 32) for _ in range(500)), "binary file"),
    ("zero.txt", b"", "empty input"),
    ("blank.md", b"  \n\t\r\n   \n", "only whitespace"),
    ("high.txt", _random_high_bytes(), "undecodable bytes: not UTF-8"),
    ("only-header.txt", b" date 2023-01-01 A summary but no body.\n\n--IANS\n", "no text"),
    ("only-front-matter.md", b"---\ntitle: Empty\n---\n\n", "no text"),
])
def test_bad_input_is_reported_with_reason(tmp_path, name, data, reason):
    failure = only_failure(write(tmp_path, name, data))
    assert reason in failure.error


def test_nonexistent_path_and_glob_without_match(tmp_path):
    missing, pattern = str(tmp_path / "nope.txt"), str(tmp_path / "*.json")
    results = list(read_inputs([missing, pattern]))
    assert results == [([], [Failure(path=missing, error="no such file or directory")]),
                       ([], [Failure(path=pattern, error="no file matches this pattern")])]


@pytest.mark.timeout(20)  # reading a FIFO would block forever
def test_empty_folder_and_non_regular_file_are_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path, "empty/.hidden.txt", "Hidden text.")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    failures = [f for _, fs in read_inputs([str(tmp_path / "empty"), str(fifo)]) for f in fs]
    assert [f.path for f in failures] == [str(tmp_path / "empty"), str(fifo)]
    assert "no files" in failures[0].error and "not a regular file" in failures[1].error


# --- folders, hidden files, globs ------------------------------------------------------------------------

def test_folder_recursion_skips_hidden_and_reads_a_file_once(tmp_path):
    good = [write(tmp_path, "news/a.txt", "A happened."), write(tmp_path, "news/sub/deep/b.md", "# B\n\nB.")]
    write(tmp_path, "news/.hidden.txt", "Hidden.")
    write(tmp_path, "news/.git/HEAD", "ref: refs/heads/main")
    write(tmp_path, "news/.git/objects/readme.txt", "Not news.")
    assert list(expand(str(tmp_path / "news"))) == good
    titles = [a.title for arts, _ in read_inputs([str(tmp_path / "news"), str(good[0])]) for a in arts]
    assert titles == ["A happened", "B"]


def test_glob_pattern(tmp_path):
    write(tmp_path, "in/one.txt", "One.")
    write(tmp_path, "in/two.txt", "Two.")
    write(tmp_path, "in/three.md", "Three.")
    write(tmp_path, "in/deep/four.txt", "Four.")
    assert [p.name for p in expand(str(tmp_path / "in" / "*.txt"))] == ["one.txt", "two.txt"]
    recursive = expand(str(tmp_path / "in" / "**" / "*.txt"))
    assert [p.name for p in recursive] == ["four.txt", "one.txt", "two.txt"]


# --- the CLI ------------------------------------------------------------------------------------------

def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "assistant.cli", "ingest", *args], cwd=tmp_path, text=True,
                          capture_output=True, env=cli_env(tmp_path / "data"), timeout=120)


REPORT_KEYS = {"added", "updated", "unchanged", "duplicates", "failed", "articles", "chunks"}


def test_cli_mixed_folder_reports_each_bad_file(tmp_path):
    inbox = tmp_path / "inbox"
    write(inbox, "seed.txt", SEED.read_bytes())
    write(inbox, "wire.txt", "WASHINGTON (Reuters) - The Senate passed a bill on farm subsidies today.\n")
    write(inbox, "notes/budget.md", "# Budget approved\n\nThe council approved the budget on Monday.\n")
    write(inbox, "two.json", json.dumps([
        {"title": "Dam opens", "url": "https://ex.example/dam", "body": "The new dam opened on Friday."},
        {"title": "No text here", "url": "https://ex.example/empty", "body": ""}]))
    bad = {"image.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "zero.txt": b"", "blank.txt": b" \n\n ",
           "broken.json": b'{"title": "x", "body": }', "high.txt": _random_high_bytes()}
    for name, data in bad.items():
        write(inbox, name, data)
    write(inbox, ".hidden.txt", b"\x00\x01 would fail if read")
    write(inbox, ".git/config", b"\x00 would fail if read")
    proc = run_cli(tmp_path, str(inbox), "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == REPORT_KEYS
    assert (report["added"], report["updated"], report["unchanged"], report["duplicates"]) == (4, 0, 0, 0)
    assert report["articles"] == 4 and report["chunks"] >= 4
    failed = {f["path"]: f["error"] for f in report["failed"]}
    expected = {str(inbox / n) for n in bad} | {f"{inbox / 'two.json'}#1"}
    assert set(failed) == expected
    assert "binary" in failed[str(inbox / "image.txt")] and "empty" in failed[str(inbox / "zero.txt")]
    assert "line 1 column" in failed[str(inbox / "broken.json")]
    assert all(error.strip() for error in failed.values())


def test_cli_all_good_with_glob_exits_0_and_is_idempotent(tmp_path):
    write(tmp_path, "in/a.txt", "PARIS (AFP) - The Louvre reopened after a strike.\n")
    write(tmp_path, "in/b.txt", "BERLIN (Reuters) - German factory orders rose in August.\n")
    write(tmp_path, "in/c.md", "Not matched by the glob.\n")
    first = run_cli(tmp_path, "in/*.txt", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["added"], report["failed"], report["articles"]) == (2, [], 2)
    second = json.loads(run_cli(tmp_path, "in/*.txt", "--json").stdout)
    assert (second["added"], second["unchanged"], second["articles"]) == (0, 2, 2)


@pytest.mark.parametrize("args", [(), ("--json",), ("x.txt", "--no-such-flag")])
def test_cli_usage_error_exits_2(tmp_path, args):
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 2 and proc.stdout == "" and "usage:" in proc.stderr
