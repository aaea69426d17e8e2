"""Engine exceptions. Each message is one line that says what was expected and what was found."""


class StudioError(Exception):
    """Base class of every error the engine reports to a user (CLI stderr, page ``st.error``)."""

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would read like a traceback.
        super().__init__(" ".join(str(message).split()))


class DataError(StudioError):
    """Input data does not have the expected shape, type or content."""


class DatasetNotFound(StudioError):
    """A dataset name that is not in the store."""


class StoreError(StudioError):
    """The database file cannot be opened or changed (locked, corrupt, wrong version)."""


class DatabaseLocked(StoreError):
    """Another process holds the database file; ``pid`` is that process (None when unknown)."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class ModelError(StudioError):
    """A model run is missing, unfinished or incompatible with the request."""
