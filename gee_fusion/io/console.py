"""Progress lines on the terminal: one definition for every job.

Lines go to standard error (standard output stays for results that scripts parse) and are never
wrapped by the console: a path or a command broken across lines cannot be copied, and a narrow or
absent terminal (CI, ``nohup``) must print the same text as a wide one.
"""

from __future__ import annotations

from rich.console import Console

CONSOLE = Console(stderr=True)


def say(progress: bool, message: str) -> None:
    """Print one progress line to standard error when ``progress`` is on.

    Args:
        progress: Whether the caller shows progress; nothing is printed otherwise.
        message: The line, in rich markup.
    """
    if progress:
        CONSOLE.print(message, highlight=False, soft_wrap=True)
