"""API keys: a file of hashed keys with scopes, re-read when it changes.

Each line of the key file is ``<name> <sha256-hex-of-the-key> <scope>[,
<scope>...]``; ``#`` starts a comment. Keys are never stored in clear: a
presented key is hashed and compared, in constant time, with every
stored hash. The file is looked at again (at most once a second) so that
a key can be added or revoked without a restart; a file that became
unreadable or malformed leaves the keys in force and is logged.
"""

import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time

SCOPES = ("words:read", "words:write", "predict", "admin")
_HEX_DIGITS = frozenset("0123456789abcdef")
_CHECK_EVERY_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """One key holder: a name for logs, the key's hash, what it may do."""

    name: str
    digest: bytes
    scopes: frozenset


def hash_key(key):
    """Return the SHA-256 hex digest a key file stores for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key():
    """Return a new random key: 256 bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def key_line(name, key, scopes):
    """Return the key file line that grants ``key`` the scopes."""
    return f"{name} {hash_key(key)} {','.join(scopes)}"


def parse_key_file(text, source="the key file"):
    """Return the keys a key file's text defines; raise ValueError if bad."""
    keys, names = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source}, line {number}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected <name> <sha256> <scopes>")
        name, digest, scopes = fields
        if len(digest) != 64 or not set(digest) <= _HEX_DIGITS:
            raise ValueError(f"{where}: the hash must be 64 lower-case hex "
                             "digits (the key's SHA-256, never the key)")
        granted = frozenset(scopes.split(","))
        unknown = sorted(granted - set(SCOPES))
        if unknown:
            raise ValueError(f"{where}: unknown scope(s) {', '.join(unknown)}"
                             f"; scopes are {', '.join(SCOPES)}")
        if name in names:
            raise ValueError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        keys.append(ApiKey(name, bytes.fromhex(digest), granted))
    return keys


class KeyFile:
    """The keys of one file, kept in step with it."""

    def __init__(self, path, clock=time.monotonic):
        """Read the file now; raise OSError or ValueError if unusable."""
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._keys = parse_key_file(path.read_text(encoding="utf-8"),
                                    str(path))
        self._checked = clock()

    def identify(self, presented):
        """Return the ApiKey whose key is ``presented``, or None."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found = None
        # Compare with every key, so the time taken says nothing of which.
        for key in self._current():
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def _current(self):
        """Return the keys, re-reading the file if it changed."""
        now = self._clock()
        if now - self._checked < _CHECK_EVERY_SECONDS:
            return self._keys
        with self._lock:
            if now - self._checked >= _CHECK_EVERY_SECONDS:
                self._checked = now
                self._reload()
        return self._keys

    def _reload(self):
        """Read the file again if its size or time changed."""
        try:
            signature = self._stat()
            if signature == self._signature:
                return
            keys = parse_key_file(self.path.read_text(encoding="utf-8"),
                                  str(self.path))
        except (OSError, ValueError) as error:
            log.error("keeping the API keys in force: %s", error)
            return
        self._keys, self._signature = keys, signature
        log.info("API keys reloaded from %s: %d key(s)", self.path,
                 len(keys))

    def _stat(self):
        """Return what tells a changed file: size and modification time."""
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns
