"""A problem in a configuration file, and the error that carries them: bounded, whatever the input.

Every message names the file, line and column and the key path.  Values quoted in messages go through
:func:`clip`, and a message, a key path and the number of problems reported per error are capped, so a hostile
file cannot make an error message large.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ISSUES = 50
MAX_MESSAGE_CHARS = 300
MAX_KEY_PATH_CHARS = 120
CLIP_CHARS = 40


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (a long string is cut before it is repr'd)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    column: int
    key_path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_path", _cut(self.key_path, MAX_KEY_PATH_CHARS))
        object.__setattr__(self, "message", _cut(self.message, MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.key_path or '<document>'}: {self.message}"


class ConfigError(Exception):
    """One or more problems in configuration files (at most MAX_ISSUES kept, then a count of the rest)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        if len(issues) > MAX_ISSUES:
            last = issues[MAX_ISSUES - 1]
            more = len(issues) - MAX_ISSUES + 1
            issues = [*issues[:MAX_ISSUES - 1],
                      ConfigIssue(last.file, last.line, last.column, "",
                                  f"{more} more problems not shown: fix these first")]
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))
