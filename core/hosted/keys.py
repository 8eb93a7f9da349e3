"""API keys: from the environment (wins) or `<user_dir>/fluxfill/keys.json`
(`{"fal": "...", "wavespeed": "..."}`), never from a widget, so they never reach workflow
JSON or PNG metadata. `Secret` hides the value from repr/str/format; `.reveal()` is the only
way out and is called only where the Authorization header is built."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InvalidKeyFile, MissingKey

ENV_VARS = {"fal": "FAL_KEY", "wavespeed": "WAVESPEED_API_KEY"}
KEY_FILE = Path("fluxfill") / "keys.json"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def __repr__(self):
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec):
        return "***"

    def __reduce__(self):  # never pickled into anything by accident
        raise TypeError("Secret is not picklable")

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self):
        return hash(("Secret", self._value))


def key_file(user_dir: str | os.PathLike | None) -> Path | None:
    return None if user_dir is None else Path(user_dir) / KEY_FILE


def where(provider: str, user_dir=None) -> str:
    """Human text naming where the key for `provider` is looked up (for error messages)."""
    f = key_file(user_dir)
    return f"the {ENV_VARS[provider]} environment variable" + (
        f" or \"{provider}\" in {f}" if f else "")


def load_key(provider: str, user_dir: str | os.PathLike | None = None, env=None) -> Secret:
    """The key for 'fal' or 'wavespeed'. Environment first, then the key file."""
    if provider not in ENV_VARS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(ENV_VARS)}")
    env = os.environ if env is None else env
    val = (env.get(ENV_VARS[provider]) or "").strip()
    if val:
        return Secret(val)
    f = key_file(user_dir)
    if f is not None and f.is_file():
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidKeyFile(f"{f} is not valid JSON ({type(e).__name__}); expected "
                             f"{{\"fal\": \"...\", \"wavespeed\": \"...\"}}") from None
        val = data.get(provider) if isinstance(data, dict) else None
        if isinstance(val, str) and val.strip():
            return Secret(val)
    raise MissingKey(f"no {provider} API key: set {where(provider, user_dir)}")


def save_key(provider: str, key: str, user_dir: str | os.PathLike) -> Path:
    """Store a key in the key file (mode 0600), keeping the other provider's key."""
    if provider not in ENV_VARS:
        raise ValueError(f"unknown provider {provider!r}")
    f = key_file(user_dir)
    f.parent.mkdir(parents=True, exist_ok=True)
    data = {}
    if f.is_file():
        try:
            data = json.loads(f.read_text(encoding="utf-8")) or {}
        except ValueError:
            data = {}
    data[provider] = key.strip()
    return write_private_json(f, data)


def write_private_json(path: Path, data: dict) -> Path:
    """Write `data` to `path` atomically (temp file + rename), readable by this user only (0600):
    the key file, and the settings file beside it."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    return path
