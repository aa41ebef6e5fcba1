from __future__ import annotations

from pathlib import Path

import pytest

from core.config import default_config, load_config
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "config.example.toml", environ={})
    assert cfg.watchlist[0].symbol == "BTC/USDT"
    assert cfg.exchanges["binance"].ccxt_config == {"enableRateLimit": True}
    assert set(cfg.detectors) == {"zscore", "lstm_forecaster", "lstm_autoencoder", "pump_dump"}
    assert "threshold" not in cfg.detectors["lstm_forecaster"].model_fields_set  # tuned default kept


def test_defaults_need_no_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg.database.url.get_secret_value().startswith("sqlite:///")
    assert cfg.telegram.token is None
    assert cfg.telegram.base_url == "https://api.telegram.org/bot"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '[telegram]\ntokn = "x"\n')
    with pytest.raises(ConfigError, match=r"telegram\.tokn: unknown key"):
        load_config(path, environ={})


def test_bad_type_names_key_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, '[telegram]\nallowed_chat_ids = [1, "abc"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "telegram.allowed_chat_ids[1]" in str(info.value)
    assert "'abc'" in str(info.value)


def test_bad_timeframe_names_key_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[watchlist]]\nexchange = "binance"\nsymbol = "BTC/USDT"\ntimeframe = "1hour"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "watchlist[0].timeframe" in str(info.value)
    assert "'1hour'" in str(info.value)


def test_missing_required_value_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[watchlist]]\nexchange = "binance"\n')
    with pytest.raises(ConfigError, match=r"watchlist\[0\]\.symbol: required value is missing"):
        load_config(path, environ={})


def test_symbol_must_be_base_slash_quote(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[watchlist]]\nexchange = "binance"\nsymbol = "BTCUSDT"\n')
    with pytest.raises(ConfigError, match=r"watchlist\[0\]\.symbol: .*'BTCUSDT'"):
        load_config(path, environ={})


def test_watchlist_exchange_must_be_configured(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[exchanges.binance]\n[[watchlist]]\nexchange = "kraken"\nsymbol = "BTC/USD"\n',
    )
    with pytest.raises(ConfigError, match="'kraken' is not configured"):
        load_config(path, environ={})


def test_out_of_range_value_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "[backtest]\nfees = -0.5\n")
    with pytest.raises(ConfigError, match=r"backtest\.fees: .*-0\.5"):
        load_config(path, environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[telegram\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path, environ={})


def test_env_overrides_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n[telegram]\ntoken = "from-file"\n')
    cfg = load_config(
        path,
        environ={
            "VIGIL_DATABASE_URL": "sqlite:///b.db",
            "VIGIL_TELEGRAM_TOKEN": "from-env",
            "VIGIL_TELEGRAM_ALLOWED_CHAT_IDS": "1, -100200",
        },
    )
    assert cfg.database.url.get_secret_value() == "sqlite:///b.db"
    assert cfg.telegram.token is not None and cfg.telegram.token.get_secret_value() == "from-env"
    assert cfg.telegram.allowed_chat_ids == [1, -100200]


def test_env_list_with_garbage_is_named() -> None:
    with pytest.raises(ConfigError, match="VIGIL_TELEGRAM_ADMIN_USER_IDS.*'1,x'"):
        load_config(None, environ={"VIGIL_TELEGRAM_ADMIN_USER_IDS": "1,x"})


def test_exchange_keys_come_from_env(tmp_path: Path) -> None:
    path = _write(tmp_path, "[exchanges.binance]\n")
    cfg = load_config(path, environ={"VIGIL_EXCHANGE_BINANCE_API_KEY": "k", "VIGIL_EXCHANGE_BINANCE_SECRET": "s"})
    assert cfg.exchanges["binance"].client_config() == {"apiKey": "k", "secret": "s"}


def test_token_never_appears_in_repr_or_dump() -> None:
    cfg = load_config(None, environ={"VIGIL_TELEGRAM_TOKEN": "123:SECRET"})
    assert "SECRET" not in repr(cfg)
    assert "SECRET" not in cfg.model_dump_json()


def test_default_config_accepts_sections() -> None:
    cfg = default_config(alerts={"cooldown_minutes": 5})
    assert cfg.alerts.cooldown_minutes == 5


def test_models_dir_is_absolute_relative_to_the_config_file_or_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    path.write_text('[paths]\nmodels_dir = "state/models"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_config(path, environ={}).paths.models_path == tmp_path / "etc" / "state" / "models"
    env = {"VIGIL_MODELS_DIR": "/srv/vigil/models"}
    assert load_config(path, environ=env).paths.models_path == Path("/srv/vigil/models")
    env = {"VIGIL_MODELS_DIR": "here"}  # relative in the environment: to where the command runs
    assert load_config(path, environ=env).paths.models_path == tmp_path / "here"


def test_models_dir_defaults_to_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_config(None, environ={}).paths.models_path == tmp_path / "xdg" / "vigil" / "models"
    env = {"VIGIL_DATA_DIR": str(tmp_path / "data")}
    assert load_config(None, environ=env).paths.models_path == tmp_path / "data" / "models"


async def test_example_alternative_endpoint_block_loads_markets_from_a_local_server(tmp_path: Path) -> None:
    """The commented block in config.example.toml, uncommented and pointed at the fake Binance, works as is."""
    from feeds.exchange import ExchangeFeed
    from tests.fakes.binance import FakeBinance, make_candles

    lines = (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines()
    start = lines.index("# >>> alternative endpoint") + 1
    block = [line.removeprefix("# ") for line in lines[start : lines.index("# <<< alternative endpoint")]]
    async with FakeBinance({"BTC/USDT": make_candles(periods=3)}) as fake:
        text = "[exchanges.binance.ccxt_config]\n" + "\n".join(block).replace("http://127.0.0.1:8080", fake.url)
        cfg = load_config(_write(tmp_path, text), environ={})
        async with ExchangeFeed("binance", cfg.exchanges["binance"]) as feed:
            assert await feed.validate_symbol("btc/usdt") == "BTC/USDT"
    assert set(fake.requests) == {"/api/v3/exchangeInfo"}
