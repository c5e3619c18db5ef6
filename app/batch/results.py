"""The outcome of scoring one input: its classes, or why it failed."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Result:
    """One output row: the ranked classes, or an error code and message."""

    source: str
    model_version: int | None = None
    classes: tuple = ()
    error: str = ""
    message: str = ""

    @property
    def failed(self):
        """Tell whether the input could not be scored."""
        return bool(self.error)
