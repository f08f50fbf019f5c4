"""Config validation: bad values are clear errors before any request; good ones are sent as written."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from botkit.config import ConfigError, read_config, validate_config
from botkit.plugins import load_plugins
from botkit_plugins.vectara.config import VectaraConfig

BASE = {"api_key": "k-123456", "corpora": [{"corpus_key": "docs"}]}


def problems(**overrides) -> str:
    with pytest.raises(ValidationError) as raised:
        VectaraConfig.model_validate({**BASE, **overrides})
    return str(raised.value)


@pytest.mark.parametrize("overrides, expected", [
    ({"corpora": [{"corpus_key": "has spaces/slash"}]}, "corpora.0.corpus_key"),
    ({"corpora": [{"corpus_key": "x" * 51}]}, "at most 50 characters"),
    ({"corpora": []}, "at least 1 item"),
    ({"corpora": [{"corpus_key": "docs", "lexical_interpolation": 1.5}]}, "less than or equal to 1"),
    ({"corpora": [{"corpus_key": "docs", "lexical_interpolation": -0.1}]}, "greater than or equal to 0"),
    ({"corpora": [{"corpus_key": "docs", "semantics": "fuzzy"}]}, "'default', 'query' or 'response'"),
    ({"generation": {"citations": {"style": "footnote"}}}, "'none', 'numeric', 'html' or 'markdown'"),
    ({"generation": {"citations": {"style": "numeric", "url_pattern": "https://x/{doc.id}"}}}, "only apply to"),
    ({"generation": {"response_language": "klingon"}}, "response_language"),
    ({"search": {"reranker": {"type": "mmr", "diversity_bias": 2}}}, "diversity_bias"),
    ({"search": {"reranker": {"type": "customer_reranker"}}}, "needs reranker_name"),
    ({"search": {"reranker": {"type": "magic"}}}, "does not match any of the expected tags"),
    ({"search": {"limit": 0}}, "search.limit"),
    ({"api_key": None}, "api_key (or OAuth2 client_id and client_secret) is required"),
    ({"client_id": "app", "client_secret": "s"}, "either api_key or client_id/client_secret"),
    ({"api_key": None, "client_id": "app"}, "needs both client_id and client_secret"),
    ({"api_key": "  "}, "api_key is empty"),
    ({"corpus": "docs"}, "Extra inputs are not permitted"),
])
def test_invalid_values_are_clear_errors(overrides, expected):
    assert expected in problems(**overrides)


def test_every_reranker_variant_is_accepted_and_sent_as_written():
    variants = [
        {"type": "customer_reranker", "reranker_name": "Rerank_Multilingual_v1", "limit": 50, "cutoff": 0.2,
         "include_context": True},
        {"type": "customer_reranker", "reranker_id": "rnk_272725719"},
        {"type": "mmr", "diversity_bias": 0.3, "limit": 10, "cutoff": 0.1},
        {"type": "userfn", "user_function": "get('$.score') * 2", "limit": 5},
        {"type": "none", "limit": 7},
        {"type": "chain", "rerankers": [{"type": "customer_reranker", "reranker_name": "Rerank_Multilingual_v1"},
                                        {"type": "mmr", "diversity_bias": 0.1},
                                        {"type": "chain", "rerankers": [{"type": "none"}]}]},
    ]
    for reranker in variants:
        config = VectaraConfig.model_validate({**BASE, "search": {"reranker": reranker}})
        assert config.request_options()["search"]["reranker"] == reranker


def test_unset_fields_are_left_out_of_the_request():
    options = VectaraConfig.model_validate(BASE).request_options()
    assert options == {"search": {"corpora": [{"corpus_key": "docs"}]}}


def test_oauth_config_is_valid_and_hides_the_secret():
    config = VectaraConfig.model_validate({"client_id": "app", "client_secret": "oauth-SECRET",
                                           "corpora": [{"corpus_key": "docs"}]})
    assert "oauth-SECRET" not in repr(config) and config.token_url == "https://auth.vectara.io/oauth2/token"


def test_yaml_errors_name_the_line_and_key(tmp_path):
    path = tmp_path / "botkit.yaml"
    path.write_text(
        "adapters:\n  console: {}\n"
        "backends:\n"
        "  support:\n"
        "    type: vectara\n"
        "    api_key: abc-123\n"
        "    corpora:\n"
        "      - corpus_key: 'bad key!'\n"
        "        lexical_interpolation: 3\n",
        encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        validate_config(read_config(path), load_plugins())
    text = str(raised.value)
    assert "botkit.yaml:8: backends.support.corpora[0].corpus_key" in text
    assert "botkit.yaml:9: backends.support.corpora[0].lexical_interpolation" in text
    assert "abc-123" not in text


# -- the HTTP keys every HTTP backend has, and Vectara's old names for them -------------------------


def test_the_shared_http_keys_are_vectaras_with_its_own_defaults():
    config = VectaraConfig.model_validate({**BASE, "timeout": 30, "connect_timeout": 2,
                                           "retry": {"backoff": 0.25, "max_wait": 5}})
    assert (config.timeout, config.connect_timeout, config.max_connections) == (30, 2, 100)
    assert (config.retry.attempts, config.retry.backoff, config.retry.max_wait) == (4, 0.25, 5)
    assert config.deprecated() == []
    assert "retry.attempts" in problems(retry={"attempts": 0})


@pytest.mark.parametrize("old, value, new", [
    ("max_retries", 2, ("attempts", 3)),  # retries after the first request; attempts count it
    ("retry_backoff", 0.25, ("backoff", 0.25)),
    ("max_retry_wait", 7, ("max_wait", 7)),
])
def test_old_retry_keys_are_read_into_retry_and_named_as_deprecated(old, value, new):
    config = VectaraConfig.model_validate({**BASE, old: value})
    assert getattr(config.retry, new[0]) == new[1]
    assert config.deprecated() == [(f"{old}: {value}", f"retry: {{{new[0]}: {new[1]}}}")]
    assert old not in config.model_dump()


def test_an_old_key_and_its_new_one_together_are_an_error():
    assert "max_retry_wait is the deprecated name of retry.max_wait" in problems(max_retry_wait=5,
                                                                                 retry={"max_wait": 9})


def test_botkit_check_warns_once_per_deprecated_key_naming_its_replacement(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("backends:\n  kb:\n    type: vectara\n    api_key: k-123456\n"
                    "    corpora: [{corpus_key: docs}]\n    retry_backoff: 0.25\n    max_retries: 1\n",
                    encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "deprecated" in line]
    assert len(warnings) == 2 and all("WARNING" in line and "'kb'" in line for line in warnings)
    for said in ("`retry_backoff: 0.25` is deprecated; write `retry: {backoff: 0.25}`",
                 "`max_retries: 1` is deprecated; write `retry: {attempts: 2}`"):
        assert sum(said in line for line in warnings) == 1
    assert "k-123456" not in proc.stderr + proc.stdout
