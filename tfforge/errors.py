"""One error hierarchy and one exit-code table for every tfforge command.

Exit codes: 0 success, 1 a check or build failed, 2 unusable input or configuration,
130 interrupted.
"""


class TfforgeError(Exception):
    """Base of every error tfforge reports to a person; the message is one line."""

    exit_code = 1


class ConfigError(TfforgeError):
    """Bad input: a flag, a file, a version, a name. Nothing was changed."""

    exit_code = 2


class BuildError(TfforgeError):
    """A build could not run or failed; `detail` carries log lines."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class VerifyError(TfforgeError):
    """A wheel failed a check."""


class PublishError(TfforgeError):
    """An upload or index operation failed."""


class Interrupted(TfforgeError):
    """The user pressed Ctrl-C or a timeout fired; cleanup already happened."""

    exit_code = 130
