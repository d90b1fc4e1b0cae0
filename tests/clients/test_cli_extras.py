"""The base install (protocol + SDK) gives a working ``forum --help``; commands that need an
extra say which one, without a traceback.

Each case runs the real ``forum`` entry point in a subprocess in which every module the
base install lacks is made unimportable (``sys.modules[name] = None``), as in a fresh
``pip install mycelium-forum``. (A fresh venv per test would cost a minute of pip.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from clients.cli.kit import EXTRA_OF
from tests.support.timeouts import timeout

BASE_ONLY = (
    "import sys\n"
    f"for name in {sorted(EXTRA_OF)!r}:\n"
    "    sys.modules[name] = None\n"
    "from clients.cli import main\n"
    "sys.argv = ['forum', *sys.argv[1:]]\n"
    "main()\n"
)


def forum_base_only(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BASE_ONLY, *args],
        capture_output=True,
        text=True,
        timeout=timeout(60),
        check=False,
    )


def test_the_extras_cover_every_third_party_module_but_the_base_ones() -> None:
    # What the base install brings (pyproject.toml dependencies) is not in EXTRA_OF.
    # (rich brings markdown_it, so it is not an extra's module either.)
    assert not {"nacl", "orjson", "pydantic", "websockets", "typer", "rich", "markdown_it"} & set(EXTRA_OF)
    assert EXTRA_OF["starlette"] == "server" and EXTRA_OF["psutil"] == "tools"


@pytest.mark.parametrize("args", [("--help",), ("serve", "--help"), ("bench", "--help"), ("bench", "ingest", "--help"), ("demo", "--help"), ("verify", "--help"), ("keygen", "--help")])
def test_help_works_on_the_base_install(args: tuple[str, ...]) -> None:
    res = forum_base_only(*args)
    assert res.returncode == 0, res.stderr
    assert "Usage: forum" in res.stdout and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("serve", "--port", "0"), "server"),
        (("demo", "--duration", "5"), "tools"),
        (("bench", "ingest", "--start", "sqlite"), "tools"),
        (("verify", "http://127.0.0.1:9"), "server"),
    ],
)
def test_a_command_without_its_extra_names_it(args: tuple[str, ...], extra: str) -> None:
    res = forum_base_only(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"needs the '{extra}' extra" in res.stderr
    assert f"pip install 'mycelium-forum[{extra}]'" in res.stderr
