"""compose.yaml cannot run here (no Docker engine); keep it honest by hand and by this test."""

from __future__ import annotations

from pathlib import Path

import yaml

from forum.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_compose_names_only_real_settings() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    env = doc["services"]["forum"]["environment"]
    fields = {f"FORUM_{name.upper()}" for name in Settings.model_fields}
    names = set(env)
    assert names, "the forum service sets no FORUM_* variables"
    assert names <= fields, f"compose sets unknown settings: {sorted(names - fields)}"
    # Every value parses as that setting would.
    Settings(**{k.removeprefix("FORUM_").lower(): v for k, v in env.items()})
    assert env["FORUM_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert doc["services"]["forum"]["build"] == "."


def test_dockerfile_installs_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for pkg in ("forum", "raters", "feeds", "clients"):
        assert f"COPY {pkg} ./{pkg}" in text
    assert 'CMD ["forum", "serve"]' in text
