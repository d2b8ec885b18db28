"""Settings: flags beat environment beat defaults; every problem is reported at once."""

from pathlib import Path

import pytest

from service.cli import main
from service.config import SETTINGS, load_settings
from service.errors import ConfigError


def test_defaults_are_valid_and_read_only():
    settings = load_settings({}, environ={})
    assert settings.engine == "embedded"
    assert settings.update_token is None
    assert settings.service_allow == ()
    assert settings.query_timeout == 10.0
    assert settings.infer is True


def test_flag_beats_environment_beats_default():
    env = {"GUIAN_KG_QUERY_TIMEOUT": "4", "GUIAN_KG_PORT": "9001"}
    settings = load_settings({"query_timeout": "2.5"}, environ=env)
    assert settings.query_timeout == 2.5
    assert settings.port == 9001
    assert settings.host == "127.0.0.1"


def test_every_problem_is_reported_at_once():
    env = {"GUIAN_KG_PORT": "99999", "GUIAN_KG_ENGINE": "fuseki", "GUIAN_KG_SERVICE_ALLOW": "ftp://x"}
    with pytest.raises(ConfigError) as caught:
        load_settings({"query_timeout": "-1", "colour": "blue"}, environ=env)
    message = caught.value.detail
    for fragment in ("GUIAN_KG_PORT", "GUIAN_KG_ENGINE", "ftp://x", "--query-timeout", "colour"):
        assert fragment in message


def test_remote_engine_needs_an_endpoint():
    with pytest.raises(ConfigError, match="remote-query"):
        load_settings({"engine": "remote"}, environ={})


def test_service_allow_is_space_separated():
    env = {"GUIAN_KG_SERVICE_ALLOW": "http://127.0.0.1:1/sparql  https://example.org/sparql"}
    assert load_settings({}, environ=env).service_allow == ("http://127.0.0.1:1/sparql", "https://example.org/sparql")


def test_every_setting_is_in_the_readme():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if s.env not in readme or s.flag not in readme]
    assert not missing, f"settings missing from the README's table: {missing}"


@pytest.mark.parametrize("level", ["LOUD", "", "10"])
def test_log_level_is_validated(level):
    with pytest.raises(ConfigError, match="log-level"):
        load_settings({"log_level": level}, environ={})
    assert load_settings({"log_level": "debug"}, environ={}).log_level == "DEBUG"


def test_typed_overrides_are_validated_too():
    with pytest.raises(ConfigError, match="query-timeout"):
        load_settings({"query_timeout": -1.0}, environ={})


def test_a_store_folder_that_is_a_file_is_a_config_error(tmp_path):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    with pytest.raises(ConfigError, match="store_dir"):
        load_settings({"store_dir": str(file)}, environ={})


def test_the_cli_reports_a_bad_setting_without_a_traceback(capsys):
    assert main(["reason", "--log-level", "LOUD"]) == 2
    err = capsys.readouterr().err
    assert "log-level" in err and "Traceback" not in err
