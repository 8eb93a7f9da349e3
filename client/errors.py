"""How the runner fails: a message for the user (no traceback) and the exit status."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130
EXIT_OVER_BUDGET = 3        # --max-usd: the batch's estimate is above it (nothing was sent)


class RunnerError(Exception):
    """A failure to report to the user as-is (no traceback); `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED, saved=()):
        super().__init__(message)
        self.code = code
        self.saved = list(saved)      # outputs downloaded before the failure was known


class Unreachable(RunnerError):
    """The server did not answer (connection refused or reset, or no answer in time)."""
