"""Where tfforge keeps its cache: TFFORGE_CACHE first, else the platform's user cache folder."""

from __future__ import annotations

import pytest

from tfforge import paths
from tfforge.errors import ConfigError


def test_tfforge_cache_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir("venvs") == tmp_path / "mine" / "venvs"
    assert (tmp_path / "mine" / "venvs").is_dir()
    assert not (tmp_path / "xdg").exists()


def test_xdg_cache_home_without_tfforge_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TFFORGE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir("pypi") == tmp_path / "xdg" / "tfforge" / "pypi"


def test_home_cache_without_either(tmp_path, monkeypatch):
    monkeypatch.delenv("TFFORGE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.cache_dir("scans") == tmp_path / ".cache" / "tfforge" / "scans"


@pytest.mark.parametrize("variable", ["TFFORGE_CACHE", "XDG_CACHE_HOME"])
def test_a_file_where_the_cache_belongs_is_one_error_naming_it(tmp_path, monkeypatch, variable):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("TFFORGE_CACHE", raising=False)
    target = blocker if variable == "TFFORGE_CACHE" else tmp_path / "xdg"
    if variable == "XDG_CACHE_HOME":
        (tmp_path / "xdg").mkdir()
        (tmp_path / "xdg" / "tfforge").write_text("")
    monkeypatch.setenv(variable, str(target))
    name = "TFFORGE_CACHE" if variable == "TFFORGE_CACHE" else "cache folder"
    with pytest.raises(ConfigError, match=f"{name} .*is a file, not a folder"):
        paths.cache_dir("venvs")
