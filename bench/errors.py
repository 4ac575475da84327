"""User-facing errors: one clear sentence, exit code 2, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input (bad name, bad file, missing data)."""

    exit_code = 2
