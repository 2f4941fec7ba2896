"""``llmeval COMMAND ...``: the plugin's commands that work on what runs left behind.

Each command lives in its own module with a ``main(argv) -> int``; this only dispatches, so a
command's imports (a database driver, the report renderer) load only when it is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command -> (module with main(argv), one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "cache": ("pytest_llmeval.cache_copy", "copy a request cache between SQLite files and PostgreSQL"),
    "merge": ("pytest_llmeval.merge", "merge the output folders of CI shards into one output and one verdict"),
}


def usage() -> str:
    lines = ["usage: llmeval COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:8} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"llmeval: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
