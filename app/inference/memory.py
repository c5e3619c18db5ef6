"""Make glibc's malloc give the memory of large decodes back to the system.

glibc gives every thread that allocates concurrently its own arena, up to
eight per core, and keeps freed blocks inside them. After a burst of
large decodes on many server threads, hundreds of megabytes stay
resident although nothing uses them. These functions bound the number of
arenas and hand free pages back; on a C library other than glibc (musl,
macOS) they do nothing and return False.
"""

import ctypes
import ctypes.util
import threading

# From glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_lock = threading.Lock()
_libc = None
_loaded = False


def _glibc():
    """Return glibc as a ctypes library, or None on any other C library."""
    global _libc, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
                # Only glibc has these three; musl has no malloc_trim.
                libc.gnu_get_libc_version.restype = ctypes.c_char_p
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = libc
            except (OSError, AttributeError):
                _libc = None
        return _libc


def glibc_version():
    """Return the running glibc's version string, or None if not glibc."""
    libc = _glibc()
    return None if libc is None else libc.gnu_get_libc_version().decode()


def limit_malloc_arenas(count):
    """Let malloc use at most count arenas; call once, at process start.

    Threads beyond the count share arenas (with a little lock
    contention) instead of each keeping its own freed memory. Return True
    when glibc accepted the setting.
    """
    if count < 1:
        raise ValueError(f"count must be positive, not {count}")
    libc = _glibc()
    return libc is not None and libc.mallopt(_M_ARENA_MAX, count) == 1


def set_mmap_threshold(nbytes):
    """Serve every allocation of nbytes or more with its own mmap.

    Such blocks go back to the system as soon as they are freed. Setting
    it also stops glibc from raising the threshold by itself, which it
    otherwise does up to 32 MiB after the first large block is freed.
    Return True when glibc accepted the setting.
    """
    if nbytes < 0:
        raise ValueError(f"nbytes must not be negative, not {nbytes}")
    libc = _glibc()
    return libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, nbytes) == 1


def release_free_memory():
    """Return the free pages of every malloc arena to the system.

    Costs a walk over the arenas (milliseconds after a large decode), so
    call it after decodes that freed a lot, not after every request.
    Return True if glibc released any memory.
    """
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1
