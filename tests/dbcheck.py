"""``make db-check``: ``overlord db check`` (alembic check) on fresh databases of each
backend named on the command line."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.databases import DatabaseFactory


def main(backends: list[str]) -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            factory = DatabaseFactory(backend, Path(workdir))
            factory.start()
            try:
                url = factory.empty()
                for command in (("upgrade",), ("check",)):
                    result = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "overlord",
                            "db",
                            *command,
                            "--database-url",
                            url,
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if result.returncode != 0:
                        failures += 1
                        print(f"{backend}: db {command[0]} failed\n{result.stderr}")
                        break
                else:
                    print(f"{backend}: alembic check clean")
            finally:
                factory.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
