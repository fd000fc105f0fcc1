"""Settings come from defaults, OPSIS_* variables and flags, in that order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsis.config import Settings


def test_defaults_bind_to_loopback() -> None:
    settings = Settings.load(environ={})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8085, Path(".opsis"))
    assert settings.credentials_file == Path(".opsis/credentials")


def test_environment_then_flags() -> None:
    environ = {"OPSIS_PORT": "9000", "OPSIS_DATA_DIR": "/srv/opsis", "OPSIS_VALIDATE_RESPONSES": "true"}
    settings = Settings.load(environ=environ, port=9100, host=None)
    assert settings.port == 9100
    assert settings.data_dir == Path("/srv/opsis")
    assert settings.validate_responses is True
    assert settings.host == "127.0.0.1"


def test_a_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="OPSIS_PORT"):
        Settings.load(environ={"OPSIS_PORT": "eighty"})
