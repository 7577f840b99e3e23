"""The error of the experiments package, in a module of its own so that every module can raise
it without importing another (``study`` and ``outcomes`` both need it)."""


class StudyError(ValueError):
    """A study file the experiment runner cannot use; the message names the file and field."""
