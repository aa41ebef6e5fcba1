"""Issue 17, failure 2: every secret in the config is a secret type; dumps and errors never show it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.cli.root import app
from core.config import load_config
from core.errors import ConfigError

PASSWORD = "s3cretPW-xyz"
API_KEY = "KEYKEYKEY123"
SECRET = "SECSECSEC456"
TOKEN = "123456789:AAHabcdefghijklmnopqrstuvwxyz012345"

runner = CliRunner()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _secret_config(tmp_path: Path) -> Path:
    return _write(
        tmp_path,
        f"""
[database]
url = "postgresql+psycopg://vigil:{PASSWORD}@127.0.0.1:5432/x"
[exchanges.binance]
ccxt_config = {{ apiKey = "{API_KEY}", secret = "{SECRET}", timeout = 5000 }}
[telegram]
token = "{TOKEN}"
""",
    )


def test_config_check_masks_file_secrets(tmp_path: Path) -> None:
    r = runner.invoke(app, ["config", "check", "--config", str(_secret_config(tmp_path))])
    assert r.exit_code == 0, r.output
    for secret in (PASSWORD, API_KEY, SECRET, TOKEN):
        assert secret not in r.output
    assert "postgresql+psycopg://vigil:***@127.0.0.1:5432/x" in r.output
    assert '"apiKey": "***"' in r.output and '"timeout": 5000' in r.output


def test_config_check_masks_environment_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[exchanges.binance]\n")
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"postgresql+psycopg://u:{PASSWORD}@h/db")
    monkeypatch.setenv("VIGIL_EXCHANGE_BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("VIGIL_EXCHANGE_BINANCE_SECRET", SECRET)
    r = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert r.exit_code == 0, r.output
    for secret in (PASSWORD, API_KEY, SECRET):
        assert secret not in r.output
    assert '"secret": "***"' in r.output


def test_secrets_are_secret_types_and_unwrap_for_their_users(tmp_path: Path) -> None:
    cfg = load_config(_secret_config(tmp_path), environ={})
    assert isinstance(cfg.database.url, SecretStr) and PASSWORD not in repr(cfg)
    assert PASSWORD not in str(cfg.database.url) and "127.0.0.1:5432/x" in str(cfg.database.url)
    client = cfg.exchanges["binance"].client_config()
    assert client == {"apiKey": API_KEY, "secret": SECRET, "timeout": 5000}
    assert API_KEY not in repr(cfg.exchanges["binance"])


@pytest.mark.parametrize(
    ("toml", "secret"),
    [
        (f'[telegram]\ntoken = ["{TOKEN}"]\n', TOKEN),
        (f'[exchanges.binance]\nccxt_config = {{ apiKey = ["{API_KEY}"] }}\n', API_KEY),
        (f'[database]\nurl = ["postgresql://u:{PASSWORD}@h/d"]\n', PASSWORD),
    ],
)
def test_wrongly_typed_secret_is_not_echoed(tmp_path: Path, toml: str, secret: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, toml), environ={})
    assert secret not in str(info.value)
    assert "value not shown" in str(info.value) or "got a list" in str(info.value)


def test_bad_database_url_error_masks_its_password() -> None:
    from storage.db import make_engine

    with pytest.raises(ConfigError) as info:
        make_engine(f"not a url://u:{PASSWORD}@h")
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("content", [b'[database]\nurl = "caf\xe9"\n', b"\x00\x01\x02garbage\xff"])
def test_binary_or_latin1_config_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    r = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
