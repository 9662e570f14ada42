"""User errors: bad input that deserves one clear line, not a traceback."""


class UserError(Exception):
    """Bad input from the user (file, flag, config). The message is one line that names
    the file / line / flag and what was expected. Command-line apps print it and exit 2."""
