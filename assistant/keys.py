"""API keys: a JSON file of salted key hashes, never the keys themselves.

    keys = KeyFile(Path("keys.json"))
    key = keys.create("ci")          # "sk-asst-…": shown once, only its hash is written
    keys.verify(key)                 # "ci"; None for a wrong or revoked key
    keys.records()                   # [KeyRecord(name, created, prefix, …)]
    keys.revoke("ci")

The file (`ASSISTANT_API_KEYS`) holds `{"version": 1, "keys": [{"name", "created", "prefix",
"salt", "hash", "n", "r", "p"}]}`: `hash` is scrypt(key, salt) with a salt of its own per key,
compared in constant time. `prefix` (the first characters of the random part, also shown by
`assistant keys list`) picks the one record to check, so a request costs at most one scrypt; a
verified key is then remembered in memory (under an HMAC with a per-process secret, never in
clear), so later requests with it cost no scrypt. The file is re-read when it changes on disk:
a revoked key stops working without a restart. Writes are atomic (temporary file + rename) and
the file is readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError

KEY_PREFIX = "sk-asst-"
PREFIX_CHARS = 8  # of the random part, stored in clear to find the record (~48 bits)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FORMAT_VERSION = 1
MAX_CACHED = 1024


@dataclass(frozen=True)
class KeyRecord:
    name: str
    created: str  # ISO 8601, UTC
    prefix: str
    salt: str  # hex
    hash: str  # hex
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def matches(self, key: str) -> bool:
        digest = _scrypt(key, bytes.fromhex(self.salt), self.n, self.r, self.p)
        return hmac.compare_digest(digest, bytes.fromhex(self.hash))

    @property
    def shown(self) -> str:
        """What `keys list` prints instead of the key: `sk-asst-AbCdEfGh…`."""
        return f"{KEY_PREFIX}{self.prefix}…"


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(key.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * n * r + 1024 * 1024)


def _record(item: Any) -> KeyRecord:
    """One record of the file, checked: names and dates are text, the salt and hash hex, the
    scrypt parameters ones that `hashlib.scrypt` accepts; ValueError (in French) otherwise."""
    wanted = ", ".join(f.name for f in fields(KeyRecord))
    try:
        record = KeyRecord(**item)
    except TypeError:  # not an object, or other fields
        raise ValueError(f"clé mal formée, champs attendus : {wanted}") from None
    name = " ".join(str(record.name).split())[:64]  # one line, whatever the file holds
    texts = (record.name, record.created, record.prefix, record.salt, record.hash)
    numbers = (record.n, record.r, record.p)
    if not all(isinstance(t, str) for t in texts) or not all(
            type(v) is int and v >= 1 for v in numbers):
        raise ValueError(f"clé « {name} » mal formée, champs attendus : {wanted}")
    if record.n < 2 or record.n & (record.n - 1) or record.n > 2**20 or record.r > 32 or (
            record.p > 16):
        raise ValueError(f"clé « {name} » : paramètres scrypt invalides")
    try:
        if len(bytes.fromhex(record.hash)) != 32 or not bytes.fromhex(record.salt):
            raise ValueError
    except ValueError:
        raise ValueError(f"clé « {name} » : empreinte ou sel invalide") from None
    return record


def _key_prefix(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + PREFIX_CHARS:
        return None
    return key[len(KEY_PREFIX):len(KEY_PREFIX) + PREFIX_CHARS]


class KeyFile:
    """The keys file at `path`; thread-safe; every method re-reads the file if it changed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []
        self._verified: dict[bytes, str] = {}  # HMAC(process secret, key) -> name
        self._secret = secrets.token_bytes(32)

    # -- reading ----------------------------------------------------------------------------
    def records(self) -> list[KeyRecord]:
        """The keys in the file (an empty list when the file does not exist yet)."""
        with self._lock:
            return list(self._load())

    def check(self) -> None:
        """Raise `ConfigError` unless the file exists and is valid (what `serve` checks first)."""
        if not self.path.exists():
            raise ConfigError(
                f"Fichier de clés introuvable : {self.path}. Créez une clé avec "
                "`assistant keys create NOM`, ou retirez ASSISTANT_API_KEYS."
            )
        self.records()

    def verify(self, key: str) -> str | None:
        """The name of the key, or None when it is unknown, revoked or malformed."""
        prefix = _key_prefix(key) if isinstance(key, str) else None
        if prefix is None:
            return None
        tag = hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()
        with self._lock:
            try:
                records = self._load()
            except ConfigError:
                return None  # an unreadable file lets nobody in
            name = self._verified.get(tag)
            if name is not None:
                return name
            candidates = [r for r in records if hmac.compare_digest(r.prefix, prefix)]
        for record in candidates:  # scrypt outside the lock: other requests go on meanwhile
            if record.matches(key):
                with self._lock:
                    if record in self._records:  # not revoked meanwhile
                        if len(self._verified) >= MAX_CACHED:
                            self._verified.clear()
                        self._verified[tag] = record.name
                        return record.name
                return None
        return None

    def is_cached(self, key: str) -> bool:
        """True when `verify(key)` will answer from memory, without a scrypt (non-blocking)."""
        tag = hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()
        with self._lock:
            try:
                return self._stamp == self._file_stamp() and tag in self._verified
            except ConfigError:
                return False

    # -- writing ----------------------------------------------------------------------------
    def create(self, name: str) -> str:
        """Add a key called `name` and return it: the only time the key exists in clear."""
        if not NAME.fullmatch(name or ""):
            raise ConfigError(
                f"Nom de clé invalide : {name!r}. Utilisez 1 à 64 lettres, chiffres, « . », "
                "« _ », « - » ou « @ », sans espace."
            )
        with self._lock:
            records = list(self._load())
            if any(r.name == name for r in records):
                raise ConfigError(
                    f"La clé « {name} » existe déjà : choisissez un autre nom, ou révoquez-la "
                    f"d'abord (`assistant keys revoke {name}`)."
                )
            key = KEY_PREFIX + secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16)
            records.append(KeyRecord(
                name=name,
                created=datetime.now(UTC).replace(microsecond=0).isoformat(),
                prefix=_key_prefix(key) or "",
                salt=salt.hex(),
                hash=_scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
            ))
            self._save(records)
        return key

    def revoke(self, name: str) -> KeyRecord:
        """Remove the key called `name`; requests with it are refused from now on."""
        with self._lock:
            records = list(self._load())
            kept = [r for r in records if r.name != name]
            if len(kept) == len(records):
                known = ", ".join(r.name for r in records) or "aucune"
                raise ConfigError(f"Aucune clé nommée « {name} » (clés : {known}).")
            self._save(kept)
            self._verified.clear()
        return next(r for r in records if r.name == name)

    # -- file -------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int, int] | None:
        """The file's identity now; None when there is no file; ConfigError when its path
        cannot be looked at (a parent that is a file, no permission)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unreadable(exc.strerror or exc) from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _unreadable(self, why: object) -> ConfigError:
        return ConfigError(
            f"Fichier de clés illisible : {self.path} ({why}). Recréez-le avec "
            "`assistant keys create NOM --file NOUVEAU_FICHIER`."
        )

    def _load(self) -> list[KeyRecord]:
        """The records, re-read when the file changed (call with the lock held)."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return self._records
        self._verified.clear()
        self._records, self._stamp = [], stamp
        if stamp is None:
            return self._records
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
                version = data.get("version") if isinstance(data, dict) else None
                raise ValueError(f"format inconnu, version {version!r}")
            if not isinstance(data.get("keys"), list):
                raise ValueError("pas de liste « keys »")
            self._records = [_record(item) for item in data["keys"]]
        except OSError as exc:
            self._stamp = None
            raise self._unreadable(exc.strerror or exc) from None
        except UnicodeDecodeError:
            self._stamp = None
            raise self._unreadable("ce n'est pas du texte UTF-8") from None
        except json.JSONDecodeError as exc:
            self._stamp = None
            raise self._unreadable(f"JSON invalide, ligne {exc.lineno}") from None
        except ValueError as exc:  # the format, or a record (`_record`)
            self._stamp = None
            raise self._unreadable(exc) from None
        return self._records

    def _save(self, records: list[KeyRecord]) -> None:
        data: dict[str, Any] = {"version": FORMAT_VERSION, "keys": [asdict(r) for r in records]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        except OSError as exc:
            raise ConfigError(
                f"Impossible d'écrire le fichier de clés {self.path} ({exc.strerror or exc}) : "
                "choisissez un autre chemin avec --file ou ASSISTANT_API_KEYS."
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, indent=1)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None  # re-read on next use
        self._load()
