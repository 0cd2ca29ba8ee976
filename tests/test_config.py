"""Settings come from the environment and a .env file; bad values are named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import OFFICIAL_API_BASE, ConfigError, load_settings


def test_no_configuration_gives_a_working_default(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./order-menu.db"
    assert settings.catalog_path is None  # the demo catalog
    assert settings.wechat_token is None  # a development token will be generated
    assert settings.wechat_api_base == OFFICIAL_API_BASE
    assert not settings.safe_mode


def test_environment_and_dotenv_are_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "WECHAT_TOKEN=from-dotenv\nWECHAT_API_BASE=http://127.0.0.1:9/\n", encoding="utf-8"
    )
    monkeypatch.setenv("WECHAT_TOKEN", "from-environment")
    settings = load_settings()
    assert settings.wechat_token == "from-environment"  # the environment wins over .env
    assert settings.wechat_api_base == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "DATABASE_URL",
            "mysql://root@localhost/x",
            "DATABASE_URL='mysql://root@localhost/x': unsupported driver 'mysql'",
        ),
        ("DATABASE_URL", "not a url", "DATABASE_URL='not a url': not a database URL"),
        ("PORT", "eighty", "PORT='eighty'"),
        (
            "CATALOG_PATH",
            "/nowhere/catalog.yaml",
            "CATALOG_PATH='/nowhere/catalog.yaml': no such file",
        ),
        (
            "WECHAT_API_BASE",
            "api.weixin.qq.com",
            "WECHAT_API_BASE='api.weixin.qq.com': must start with http",
        ),
        ("WECHAT_ENCODING_AES_KEY", "short", "WECHAT_ENCODING_AES_KEY: must be the 43-character"),
    ],
)
def test_bad_values_name_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_secrets_are_never_echoed(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", "s3cr3t-but-wrong")
    monkeypatch.setenv("DATABASE_URL", "mysql://bob:hunter2@db/x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "s3cr3t" not in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "bob:***@db" in str(caught.value)


def test_safe_mode_turns_on_with_a_valid_aes_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    assert load_settings().safe_mode
