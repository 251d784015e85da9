"""Config loading, its error messages, the provider registry and the CA exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from interlock.config import ConfigError, load_config, parse_config
from interlock.providers import ProviderRegistry
from interlock.trust import exports, write_bundle
from policies.registry import build_chain

REPO = Path(__file__).resolve().parent.parent


def test_shipped_config_is_valid() -> None:
    config = load_config(REPO / "mitm_config.yaml")
    build_chain(config.policies)
    assert {p.name for p in config.all_providers()} >= {"openai", "anthropic"}
    assert config.upstream.idle_timeout_s == 600
    assert config.responses_websocket == "police"
    assert config.keepalive.interval_s == 10


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"recorder": {"queue_size": 0}}, "recorder.queue_size"),
        ({"recorder": {"databse": "x.db"}}, "recorder.databse"),
        (
            {"providers": [{"name": "x", "hosts": ["h"], "routes": [{"path": "/", "dialect": "no-such-dialect"}]}]},
            "providers.0.routes.0.dialect",
        ),
        ({"policies": [{"policy": "replace", "timeout_s": "soon"}]}, "policies.0.timeout_s"),
        ({"upstream": {"idle_timeout_s": 0}}, "upstream.idle_timeout_s"),
        ({"upstream": {"idle_timeout_s": "ten minutes"}}, "upstream.idle_timeout_s"),
        ({"upstream": {"idle_timeout_s": float("inf")}}, "upstream.idle_timeout_s"),
        ({"upstream": {"idle_timeout": 5}}, "upstream.idle_timeout"),
        ({"responses_websocket": "block"}, "responses_websocket"),
        ({"keepalive": {"interval_s": 0.5}}, "keepalive.interval_s"),
        ({"keepalive": {"interval_s": "often"}}, "keepalive.interval_s"),
        ({"keepalive": {"interval_s": float("nan")}}, "keepalive.interval_s"),
        ({"keepalive": {"every_s": 5}}, "keepalive.every_s"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(data)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"policy": "no_such_policy"}, r"policies\.0 \(no_such_policy\)\.policy: unknown policy"),
        ({"policy": "deny_tools", "deni": ["x"]}, r"policies\.0 \(deny_tools\)\.deni"),
        (
            {"policy": "replace", "rules": [{"find": "a", "regex": "yes please"}]},
            r"policies\.0 \(replace\)\.rules\.0\.regex",
        ),
        ({"policy": "replace", "rules": [{"find": "a+", "regex": True}]}, r"max_match_length"),
        ({"policy": "redact", "detectors": ["ssn"]}, r"policies\.0 \(redact\)\.detectors"),
    ],
)
def test_bad_policy_entry_names_policy_and_key(entry: dict[str, object], fragment: str) -> None:
    config = parse_config({"policies": [entry]})
    with pytest.raises(ConfigError, match=fragment):
        build_chain(config.policies)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_registry_matches_host_and_path_only() -> None:
    registry = ProviderRegistry(parse_config({}).all_providers())
    assert registry.match("POST", "api.openai.com", "/v1/chat/completions") is not None
    anthropic = registry.match("POST", "API.Anthropic.com", "/v1/messages?beta=true")
    assert anthropic is not None and anthropic.dialect == "anthropic-messages"
    azure = registry.match("POST", "myco.openai.azure.com", "/openai/deployments/gpt4o/chat/completions")
    assert azure is not None and azure.provider == "azure-openai"
    assert registry.match("GET", "api.openai.com", "/v1/chat/completions") is None
    responses = registry.match("POST", "api.openai.com", "/v1/responses")
    assert responses is not None and responses.dialect == "openai-responses"
    assert registry.match("POST", "api.openai.com", "/v1/embeddings") is None
    assert registry.match("POST", "api.anthropic.com", "/api/claude_code/settings") is None
    assert registry.match("POST", "example.com", "/v1/chat/completions") is None


def test_extra_providers_add_to_the_defaults() -> None:
    config = parse_config(
        {
            "extra_providers": [
                {
                    "name": "vllm",
                    "hosts": ["vllm.lan"],
                    "routes": [{"path": "/v1/chat/completions", "dialect": "openai-chat"}],
                }
            ]
        }
    )
    registry = ProviderRegistry(config.all_providers())
    assert registry.match("POST", "vllm.lan", "/v1/chat/completions") is not None
    assert registry.match("POST", "api.openai.com", "/v1/chat/completions") is not None


def test_trust_exports(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_bundle(tmp_path)
    (tmp_path / "mitmproxy-ca-cert.pem").write_text("-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n")
    ca, bundle = write_bundle(tmp_path)
    assert bundle.read_text().endswith(ca.read_text())
    lines = exports(ca, bundle, "http://127.0.0.1:8080")
    assert f"export SSL_CERT_FILE={bundle}" in lines
    assert f"export NODE_EXTRA_CA_CERTS={ca}" in lines
    assert "export HTTPS_PROXY=http://127.0.0.1:8080" in lines
    assert "export https_proxy=http://127.0.0.1:8080" in lines  # read first where both are set
    assert f"export CURL_CA_BUNDLE={bundle}" in lines and f"export CODEX_CA_CERTIFICATE={ca}" in lines


def test_the_commented_rule_policies_example_is_valid() -> None:
    text = (REPO / "mitm_config.yaml").read_text()
    block = text.split("replace `policies: []` with:\n#\n", 1)[1].split("# End of the rule policies example.", 1)[0]
    example = yaml.safe_load("\n".join(line.removeprefix("# ").removeprefix("#") for line in block.splitlines()))
    chain = build_chain(parse_config(example).policies)
    names = [entry.name for entry in chain.entries]
    assert names == ["redact", "model_rewrite", "system_prompt", "replace", "deny_tools"]
    from interlock.neutral import ToolCall

    deny = chain.entries[-1].policy
    assert deny.verdict(ToolCall(id="1", name="Bash", arguments={"command": "rm -rf /"})) == "deletes the file system"  # type: ignore[attr-defined]
    assert deny.verdict(ToolCall(id="2", name="Bash", arguments={"command": "ls /"})) is None  # type: ignore[attr-defined]


def test_the_commented_budgets_example_is_valid_and_off_by_default() -> None:
    text = (REPO / "mitm_config.yaml").read_text()
    block = text.split("survive restarts (read from the database) and live reloads. Add to `policies:`:\n", 1)[1]
    block = block.split("# End of the budgets example.", 1)[0]
    example = yaml.safe_load("\n".join(line.removeprefix("# ").removeprefix("#") for line in block.splitlines()))
    [budget] = build_chain(parse_config(example).policies).entries
    assert budget.name == "budget"
    assert [limit.options.name for limit in budget.policy.limits] == [  # type: ignore[attr-defined]
        "per-session",
        "daily-team",
        "opus-hourly",
        "loop-guard",
    ]
    assert build_chain(load_config(REPO / "mitm_config.yaml").policies).entries == []


def test_the_commented_alerts_example_is_valid_and_off_by_default() -> None:
    text = (REPO / "mitm_config.yaml").read_text()
    block = text.split("`alerts` table. Add at the top level:\n", 1)[1].split("# End of the alerts example.", 1)[0]
    example = yaml.safe_load("\n".join(line.removeprefix("# ").removeprefix("#") for line in block.splitlines()))
    alerts = parse_config(example).alerts
    assert [rule.name for rule in alerts.rules] == ["spend", "blocked-burst", "errors", "judge-sure"]
    assert alerts.channels.configured() == ["terminal", "webhook"]
    assert load_config(REPO / "mitm_config.yaml").alerts.rules == []
