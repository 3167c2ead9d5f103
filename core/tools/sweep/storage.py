"""Where a study is kept: storage URLs, opening a storage, and tuning it for several workers.

In memory (``storage=None``), any Optuna storage URL (``sqlite:///...``, ``postgresql://``, ...),
or a plain file path (a SQLite file); the CLI defaults to a SQLite file next to the lab
(`default_storage`; for an example shipped with the app, in the user data folder:
core/user_data.py). `open_storage` fails fast with a `LabError` naming ``--storage``: a SQLite
file in a missing or read-only folder is refused before any database call, a server that does
not answer gives up after ``CONNECT_TIMEOUT_S``; SQLite gets a busy timeout and a WAL journal,
a bare ``postgresql://`` URL the PostgreSQL driver that is installed.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from core.errors import LabError
from core.user_data import folder_for_lab

HEARTBEAT_INTERVAL_S = 15
HEARTBEAT_GRACE_S = 60
CONNECT_TIMEOUT_S = 5  # a database server that does not answer: fail fast, say which
SQLITE_BUSY_TIMEOUT_S = 30  # several workers on one SQLite file wait for its lock this long
OPEN_ATTEMPTS = 4  # SQLite: two workers creating the tables at once may collide; retry


def default_storage(lab_path: str | os.PathLike) -> str:
    """The SQLite file a saved sweep of a lab uses: ``<stem>.sweeps.db`` next to the lab, or in
    the user data folder for a lab shipped with the app (never inside the installed app)."""
    path = Path(lab_path).resolve()
    stem = path.name.split(".")[0] or "lab"
    return f"sqlite:///{folder_for_lab(path) / (stem + '.sweeps.db')}"


def storage_url(storage: str | os.PathLike | None) -> str | None:
    """None for memory; a URL as is; a plain path becomes a SQLite URL."""
    if storage is None:
        return None
    text = str(storage).strip()
    if text in ("", "memory", ":memory:"):
        return None
    if "://" in text:
        return _with_installed_driver(text)
    return f"sqlite:///{Path(text).resolve()}"


def _with_installed_driver(url: str) -> str:
    """A bare ``postgresql://`` URL with the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; we ship psycopg2 (the test
    extra), so without this a plain URL failed with "Failed to import DB access module".
    An explicit driver (``postgresql+psycopg://``) is left as the user wrote it.
    """
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def shown_url(url: str | None) -> str:
    """A storage URL safe to print (password hidden)."""
    if url is None:
        return "memory"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


def open_storage(storage: str | os.PathLike | None):
    """An Optuna storage, or a `LabError` naming --storage when it cannot be opened.

    Fails fast: a SQLite file in a missing or read-only folder is refused before any database
    call, and a server that does not answer gives up after ``CONNECT_TIMEOUT_S`` seconds.
    """
    import optuna

    url = storage_url(storage)
    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith("sqlite:///"):
        _check_sqlite_path(url)
    last_error: Exception | None = None
    opened = None
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opened = optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=HEARTBEAT_GRACE_S,
                    engine_kwargs=_engine_kwargs(url),
                )
            break
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors vary by backend
            last_error = exc
            if _unreachable(exc, url):
                break  # a server that is not there: say so now, do not retry
            # Two workers creating the tables at the same moment: one loses the race ("table
            # already exists", a unique violation, "database is locked"); the next try finds
            # them made.
            time.sleep(0.2 * (attempt + 1))
    if opened is None:
        text = str(last_error).strip()
        first = text.splitlines()[0] if text else type(last_error).__name__
        raise LabError("--storage", f"cannot open {shown_url(url)}: {first[:200]}") from None
    if url.startswith("sqlite"):
        _tune_sqlite(opened.engine)
    return opened


def _unreachable(exc: BaseException, url: str) -> bool:
    """A server that cannot be reached (connection refused, timeout, bad host or login): the
    driver's OperationalError somewhere in the chain, for anything but SQLite (whose
    OperationalError is a busy lock worth retrying)."""
    from sqlalchemy import exc as sa_exc

    if url.startswith("sqlite"):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa_exc.OperationalError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_sqlite_path(url: str) -> None:
    path = Path(url[len("sqlite:///"):])
    folder = path.parent
    if not folder.is_dir():
        raise LabError("--storage", f"{shown_url(url)}: the folder {folder} does not exist; "
                                    "allowed: a SQLite file in an existing, writable folder")
    # SQLite writes a journal beside the file, so the folder must be writable too.
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        raise LabError("--storage", f"{shown_url(url)}: {folder} is read-only; allowed: a "
                                    "SQLite file in a writable folder")


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        # Several processes on one file: wait for the lock instead of failing at once.
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if url.startswith(("postgresql", "mysql", "mariadb")):
        # An unreachable host would otherwise hang for the OS's TCP timeout (minutes).
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
                "pool_pre_ping": True}
    return {}


def _tune_sqlite(engine) -> None:
    """WAL journal + synchronous=NORMAL: a sweep commits after every report, and a full fsync
    per commit cost more than the training. WAL stays crash-safe (a killed process loses
    nothing committed; only a power cut may lose the last commits) and lets other workers read
    while one writes."""
    from sqlalchemy import event

    def on_connect(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections made before the listener get the pragmas too
