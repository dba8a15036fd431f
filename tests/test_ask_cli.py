"""`newsqa ask` and `newsqa eval` as a user runs them: subprocesses over a seed-only store built by
`newsqa ingest`, offline (no model configured)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT, SEED, cli_env, run_cli

from assistant.evaluate import load_queries

QURESHI = "What did Qureshi say about Russia?"
SEED_EVAL = ROOT / "evals" / "seed.yaml"
CITATION_KEYS = {"n", "article_id", "title", "source", "published_at", "url", "passage", "quote"}
SEED_TITLE = "Lavrov arrived in Pakistan on Tuesday for a two-day visit"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A store holding only the seed article; NEWSQA_MODEL empty, so answers are offline."""
    env = cli_env(tmp_path_factory.mktemp("cli") / "data", NEWSQA_MODEL="")
    done = run_cli("ingest", str(SEED), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["articles"] == 1
    return env


def test_ask_json_prints_one_answer_object(env):
    done = run_cli("ask", QURESHI, "--json", env=env)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    answer = json.loads(line)
    assert {"answer", "refused", "citations", "filters", "model", "timings_ms"} <= set(answer)
    assert answer["refused"] is False and answer["model"] == "extractive" and answer["fallback"] is None
    assert "multifaceted" in answer["answer"] and "geographic proximity" in answer["answer"]
    assert answer["citations"] and all(set(c) >= CITATION_KEYS for c in answer["citations"])
    assert [c["n"] for c in answer["citations"]] == list(range(1, len(answer["citations"]) + 1))
    assert len({c["article_id"] for c in answer["citations"]}) == 1
    for c in answer["citations"]:
        assert c["title"].startswith(SEED_TITLE) and c["source"] == "IANS"
        assert c["published_at"].startswith("2021-04-08") and c["quote"] and c["quote"] in c["passage"]
    assert answer["filters"]["speaker"] == "Qureshi" and answer["filters"]["sources"] == []
    assert answer["timings_ms"]["total"] > 0


def test_ask_prints_the_answer_then_its_sources(env):
    done = run_cli("ask", QURESHI, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Speaking on the occasion, Qureshi reiterated")
    at = lines.index("Sources:")
    assert "multifaceted" in " ".join(lines[:at]) and "offline extractive answer" not in done.stdout
    listed = [line for line in lines[at + 1:] if re.match(r"  \[\d+\] ", line)]
    assert listed and all(SEED_TITLE in line and "— IANS, 2021-04-08" in line for line in listed)


def test_eval_prints_a_json_summary_and_writes_the_report(env, tmp_path):
    out = tmp_path / "report"
    done = run_cli("eval", "--queries", str(SEED_EVAL), "--json", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["n"] == len(load_queries(SEED_EVAL)) == 10
    retrieval, answers = summary["retrieval"], summary["answers"]
    assert {"hits@4", "hits@10", "mrr@10", "map@10", "recall@10", "complete@10", "by_type"} <= set(retrieval)
    assert set(retrieval["by_type"]) == {"fact", "statement"}
    assert set(answers) >= {"accuracy", "refusal_rate_null", "false_refusal_rate", "citation_validity"}
    assert all(0 <= answers[key] <= 1 for key in answers)
    # the three questions the seed does not answer are refused; the answered ones cite what supports them
    assert answers["refusal_rate_null"] == 1.0 and answers["citation_validity"] == 1.0
    assert answers["accuracy"] >= 0.8 and retrieval["hits@10"] >= 0.8
    assert (out / "report.md").is_file() and f"report: {out / 'report.md'}" in done.stderr
    [svg] = out.glob("*.svg")
    assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_eval_with_a_missing_queries_file_exits_2_and_says_so(env, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    done = run_cli("eval", "--queries", str(missing), "--json", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("newsqa: ") and "No such file" in done.stderr
    assert str(missing) in done.stderr
    assert "Traceback" not in done.stderr
