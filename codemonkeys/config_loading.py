"""Loading the configuration: defaults < ``codemonkeys.toml`` (or ``--config PATH``) <
``CODEMONKEYS_<SECTION>__<KEY>`` environment variables < ``--set section.key=value`` <
typed CLI values, validated by the ``Config`` model (``config.py``).

We merge the sources by hand (``tomllib`` + a small env/override parser) instead of
pydantic-settings because the config file path and the dotted ``--set`` overrides are chosen
at run time; the validation itself is pydantic's.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codemonkeys.config import Config
from codemonkeys.errors import CodemonkeysError

ENV_PREFIX = "CODEMONKEYS_"
DEFAULT_CONFIG_FILE = "codemonkeys.toml"


class ConfigError(CodemonkeysError, ValueError):
    """The configuration could not be loaded; the message says what and where."""


KEYS_FIX = (
    "correct the key or value named (in codemonkeys.toml, a CODEMONKEYS_<SECTION>__<KEY> "
    "variable or --set); `codemonkeys config show` lists every key with its default"
)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = [k for k in dotted.split(".") if k]
    if not keys:
        raise ConfigError(f"empty config key in {dotted!r}", fix=KEYS_FIX)
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def parse_value(raw: str) -> Any:
    """Parse a CLI/env value as a TOML value (numbers, booleans, arrays, quoted strings);
    anything that is not valid TOML is taken as a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(
            f"override {item!r} must look like section.key=value",
            fix="e.g. --set generation.samples=4",
        )
    key, raw = item.split("=", 1)
    return key.strip(), parse_value(raw.strip())


def env_config_key(name: str) -> str | None:
    """The dotted config key of an environment variable ``CODEMONKEYS_<SECTION>__<KEY>``,
    or None when the name is not config (unknown section, no ``__``)."""
    if not name.startswith(ENV_PREFIX):
        return None
    section, sep, rest = name[len(ENV_PREFIX) :].lower().partition("__")
    if not sep or not rest or section not in Config.model_fields:
        return None
    return f"{section}.{rest.replace('__', '.')}"


def load_config(
    path: Path | None = None,
    overrides: list[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Effective config: defaults < file < environment < overrides < ``values``.

    ``overrides`` are the user's ``section.key=value`` texts (values parsed as TOML);
    ``values`` are typed values by dotted key (what CLI options such as ``--model`` set),
    taken as they are: never rendered to TOML text and parsed back."""
    data: dict[str, Any] = {}
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None:
        if not path.is_file():
            raise ConfigError(
                f"config file not found: {path}",
                fix="check the path given to --config (without it ./codemonkeys.toml is read)",
            )
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(
                f"{path}: invalid TOML: {e}", fix="correct the file at the line and column named"
            ) from e
    env = dict(os.environ) if env is None else env
    for name, raw in sorted(env.items()):
        dotted = env_config_key(name)
        if dotted is not None:
            _set_dotted(data, dotted, parse_value(raw))
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    for key, value in (values or {}).items():
        _set_dotted(data, key, value)
    try:
        config = Config.model_validate(data)
    except Exception as e:  # pydantic.ValidationError: keep its precise field paths
        raise ConfigError(f"invalid configuration: {e}", fix=KEYS_FIX) from e
    config.prompt_templates()  # an unusable prompts.dir is a clear error now, not mid-run
    return config
