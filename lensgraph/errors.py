"""The one exception type the CLI turns into a clear message and an exit code."""

from __future__ import annotations

# Exit codes, documented in README.md.
EXIT_INPUT = 2  # bad user input: prompt, target, file, parameter
EXIT_MODEL = 3  # the model cannot be found, loaded or is not supported
EXIT_STORE = 4  # the store cannot be opened, is of another schema version, or failed


class LensgraphError(Exception):
    """An error with a message meant for the user, and the exit code the CLI returns."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InputError(LensgraphError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_INPUT)


class ModelError(LensgraphError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_MODEL)


class StoreError(LensgraphError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_STORE)
