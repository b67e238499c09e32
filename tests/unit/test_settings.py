"""One written order of precedence: defaults -> tfforge.toml -> TFFORGE_* env -> command line."""

import pytest

from tfforge import settings
from tfforge.errors import ConfigError


def test_precedence(tmp_path):
    assert settings.load({}, cwd=tmp_path, environ={})["gcc_version"] == "12.2.0"
    (tmp_path / "tfforge.toml").write_text('[tfforge]\ngcc_version = "11.4.0"\n')
    assert settings.load({}, cwd=tmp_path, environ={})["gcc_version"] == "11.4.0"
    env = {"TFFORGE_GCC_VERSION": "10.5.0", "TFFORGE_TF_PROBE_TIMEOUT": "5"}
    merged = settings.load({}, cwd=tmp_path, environ=env)
    assert merged["gcc_version"] == "10.5.0" and merged["tf_probe_timeout"] == 5
    merged = settings.load(
        {"gcc_version": "9.4.0", "tf_probe_timeout": None}, cwd=tmp_path, environ=env
    )
    assert merged["gcc_version"] == "9.4.0" and merged["tf_probe_timeout"] == 5


def test_bad_config_file_and_env(tmp_path):
    (tmp_path / "tfforge.toml").write_text('[tfforge]\ngcc_versoin = "11"\n')
    with pytest.raises(ConfigError, match="unknown option.*gcc_versoin"):
        settings.load({}, cwd=tmp_path, environ={})
    (tmp_path / "tfforge.toml").write_text("[tfforge\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings.load({}, cwd=tmp_path, environ={})
    (tmp_path / "tfforge.toml").unlink()
    with pytest.raises(ConfigError, match="TFFORGE_TF_PROBE_TIMEOUT='soon'"):
        settings.load({}, cwd=tmp_path, environ={"TFFORGE_TF_PROBE_TIMEOUT": "soon"})


@pytest.mark.parametrize("text", ["--5", "-+5", "5x", "", "٣"])
def test_a_malformed_whole_number_is_one_config_error(tmp_path, text):
    with pytest.raises(ConfigError, match="TFFORGE_SMOKE_BATCH=.* is not a whole number"):
        settings.load({}, cwd=tmp_path, environ={"TFFORGE_SMOKE_BATCH": text})


def test_tfforge_toml_is_read_from_the_project_root(tmp_path, monkeypatch):
    """TFFORGE_ROOT names the project: its tfforge.toml counts, not the working directory's."""
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nserve_port = 9999\n")
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    assert settings.load({}, environ={}).serve_port == 9999
