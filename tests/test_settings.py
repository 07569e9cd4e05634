"""Process settings: a bad MODELSHIFT_* value is a ConfigError that names the variable and the value."""

from __future__ import annotations

import pytest

from modelshift.errors import ConfigError
from modelshift.settings import get_settings, load_settings


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("MODELSHIFT_STOP_AFTER", "bogus", "MODELSHIFT_STOP_AFTER: Input should be"),
        ("MODELSHIFT_STOP_AFTER", "canary", "MODELSHIFT_STOP_AFTER: a canary always ends"),
        ("MODELSHIFT_CANARY_LEASE_SECONDS", "1", "MODELSHIFT_CANARY_LEASE_SECONDS"),
        ("MODELSHIFT_RETIRE_GRACE_SECONDS", "-1", "MODELSHIFT_RETIRE_GRACE_SECONDS"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="settings: ") as raised:
        load_settings()
    assert named in str(raised.value) and repr(value) in str(raised.value)
    get_settings.cache_clear()
    with pytest.raises(ConfigError):
        get_settings()
    get_settings.cache_clear()
