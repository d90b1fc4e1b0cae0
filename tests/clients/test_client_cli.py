"""The ``forum`` command line through typer's CliRunner: help, keys, dry runs, exit codes.

One test needs a forum (``forum serve``, then tampered with); the others need none.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from clients.cli import app
from clients.cli.kit import ExitCode, Output, reporting, safe_text
from clients.sdk.errors import ConnectError, InsecureKeyFile, Refused, VerificationFailed
from clients.sdk.keys import derive_key, load_key, save_key
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Limits, verify_envelope
from tests.clients.conftest import ServeProcess, tamper_event

runner = CliRunner()
COMMANDS = [
    [],
    ["serve"],
    ["keygen"],
    ["whoami"],
    ["post"],
    ["rate"],
    ["watch"],
    ["outcome"],
    ["outcome", "publish"],
]


@pytest.fixture(autouse=True)
def _no_forum_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORUM_URL", "FORUM_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return save_key(derive_key("tests", "cli"), tmp_path / "agent.key")


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}/ws"


def _lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "forum")
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert result.exit_code in (0, 2)


def test_keygen_then_whoami(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    made = runner.invoke(app, ["keygen", str(path), "--json"])
    assert made.exit_code == 0, made.output
    did = _lines(made.stdout)[0]["did"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path).did == did
    shown = runner.invoke(app, ["whoami", "--key", str(path)])
    assert shown.exit_code == 0 and shown.stdout.strip() == did
    as_json = runner.invoke(app, ["whoami", "--json"], env={"FORUM_KEY": str(path)})
    assert _lines(as_json.stdout)[0]["did"] == did


def test_keygen_never_overwrites(key_file: Path) -> None:
    before = key_file.read_bytes()
    result = runner.invoke(app, ["keygen", str(key_file)])
    assert result.exit_code == ExitCode.KEY
    assert "already exists" in result.stderr
    assert key_file.read_bytes() == before


def test_whoami_refuses_a_key_file_others_can_read(key_file: Path) -> None:
    key_file.chmod(0o644)
    result = runner.invoke(app, ["whoami", "--key", str(key_file)])
    assert result.exit_code == ExitCode.KEY
    assert "chmod 600" in result.stderr


def test_whoami_errors_as_json(key_file: Path) -> None:
    key_file.chmod(0o644)
    result = runner.invoke(app, ["whoami", "--key", str(key_file), "--json"])
    error = _lines(result.stderr)[0]
    assert error["exit_code"] == ExitCode.KEY and "chmod 600" in str(error["error"])


def test_a_missing_key_option_is_a_usage_error() -> None:
    assert runner.invoke(app, ["whoami"]).exit_code == ExitCode.USAGE


def test_post_dry_run_prints_a_valid_envelope(key_file: Path, tmp_path: Path) -> None:
    text_file = tmp_path / "text.md"
    text_file.write_text("# Tools\nShare them.", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            *(
                "post",
                "-k",
                str(key_file),
                "--title",
                "Tool library",
                "--text-file",
                str(text_file),
            ),
            *("--tag", "tools", "--tag", "commons", "--summary", "Share", "--dry-run", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    (line,) = _lines(result.stdout)
    event = verify_envelope(line["envelope"], limits=Limits(), now_ms=2**50)
    assert event.id == line["id"] and event.kind == "proposal"
    assert event.body == {
        "title": "Tool library",
        "summary": "Share",
        "text": "# Tools\nShare them.",
        "tags": ["tools", "commons"],
    }


def test_post_dry_run_with_proof_of_work(key_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "post",
            "-k",
            str(key_file),
            "--title",
            "t",
            "--text",
            "x",
            "--pow",
            "8",
            "--dry-run",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert str(_lines(result.stdout)[0]["id"]).startswith("00")


@pytest.mark.parametrize("extra", [[], ["--text", "a", "--text-file", "f"]])
def test_post_needs_exactly_one_text_source(key_file: Path, extra: list[str]) -> None:
    result = runner.invoke(app, ["post", "-k", str(key_file), "--title", "t", *extra])
    assert result.exit_code == ExitCode.USAGE
    assert "exactly one of --text and --text-file" in result.stderr


def test_post_refused_locally_with_the_forum_error(key_file: Path) -> None:
    result = runner.invoke(
        app, ["post", "-k", str(key_file), "--title", "", "--text", "x", "--dry-run"]
    )
    assert result.exit_code == ExitCode.REFUSED
    assert "invalid: proposal body field 'title'" in result.stderr


def test_rate_accepts_a_negative_score_and_criteria(key_file: Path) -> None:
    target = "d" * 64
    result = runner.invoke(
        app,
        [
            *(
                "rate",
                "-k",
                str(key_file),
                target,
                "-0.5",
                "-c",
                "feasible=1",
                "--criterion",
                "fair=-0.25",
            ),
            *("--note", "ok", "--dry-run", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    body = orjson.loads(str(_lines(result.stdout)[0]["envelope"]["payload"]))["body"]  # type: ignore[index]
    assert body == {
        "target": target,
        "score": -0.5,
        "criteria": {"feasible": 1.0, "fair": -0.25},
        "note": "ok",
    }


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["d" * 64, "2"], ExitCode.REFUSED, "score"),
        (["d" * 64, "0.5", "-c", "feasible"], ExitCode.USAGE, "SLUG=SCORE"),
        (["d" * 64, "0.5", "-c", "feasible=high"], ExitCode.USAGE, "SLUG=SCORE"),
        (["nope", "0.5"], ExitCode.REFUSED, "target"),
    ],
)
def test_rate_errors(key_file: Path, args: list[str], code: ExitCode, message: str) -> None:
    result = runner.invoke(app, ["rate", "-k", str(key_file), *args, "--dry-run"])
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_cannot_connect_exits_3(key_file: Path) -> None:
    url = _closed_port_url()
    result = runner.invoke(
        app, ["post", "-k", str(key_file), "--title", "t", "--text", "x", "--url", url]
    )
    assert result.exit_code == ExitCode.CONNECT
    assert "cannot connect" in result.stderr
    result = runner.invoke(app, ["watch"], env={"FORUM_URL": url})
    assert result.exit_code == ExitCode.CONNECT


def test_watch_with_a_bad_filter_is_a_usage_error() -> None:
    result = runner.invoke(app, ["watch", "--kind", "nonsense"])
    assert result.exit_code == ExitCode.USAGE
    assert "kinds" in result.stderr


def test_serve_with_invalid_settings_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--port", "70000", "--data-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.USAGE
    assert "port" in result.stderr


def test_outcome_publish_dry_run(key_file: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "results.csv"
    csv_file.write_text(
        "proposal,status,verdict,period_start,summary\n"
        f"{'e' * 64},completed,success,2026-01-01,Worked\n"
        f"{'f' * 64},planned,,2026-02-01,\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            *("outcome", "publish", "-k", str(key_file), str(csv_file), "--dry-run", "--json"),
            *("--community-name", "Elm Street", "--about", "Neighbours", "--place", "Testville"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert [line["kind"] for line in lines] == ["community", "outcome", "outcome"]
    for line in lines:
        verify_envelope(line["envelope"], limits=Limits(), now_ms=2**50)


@pytest.mark.parametrize(
    ("content", "name", "extra", "message"),
    [
        ("proposal,status,period_start\n", "r.csv", [], "no outcomes"),
        ("x", "r.txt", [], "--format"),
        ("x", "r.csv", ["--format", "xml"], "--format must be"),
        ("proposal,status,period_start,oops\n", "r.csv", [], "unknown column"),
        (
            "proposal,status,period_start\nx,planned,2026-01-01\n",
            "r.csv",
            ["--community-name", "A"],
            "go together",
        ),
    ],
)
def test_outcome_publish_usage_errors(
    key_file: Path, tmp_path: Path, content: str, name: str, extra: list[str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = runner.invoke(
        app, ["outcome", "publish", "-k", str(key_file), str(path), "--dry-run", *extra]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.stderr


def test_outcome_publish_refuses_an_invalid_row_with_the_forum_error(
    key_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "proposal,status,period_start\nnot-an-id,planned,2026-01-01\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["outcome", "publish", "-k", str(key_file), str(path), "--dry-run"])
    assert result.exit_code == ExitCode.REFUSED
    assert (
        "row 1: the forum would refuse this: invalid: outcome body field 'proposal'"
        in result.stderr
    )


def test_safe_text_neutralises_terminal_control() -> None:
    hostile = "ok\x1b[2J\x1b]0;title\x07 \u202eevil\u202c [bold]markup[/bold]\nnext"
    cleaned = safe_text(hostile, one_line=True)
    assert "\x1b" not in cleaned and "\x07" not in cleaned and "\u202e" not in cleaned
    assert "\n" not in cleaned
    assert "[bold]markup[/bold]" in cleaned  # printed as plain text, never as markup
    assert safe_text("x" * 50, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Refused("invalid", "no", "a" * 64), ExitCode.REFUSED),
        (ProtocolError("too-large", "big"), ExitCode.REFUSED),
        (ConnectError("down"), ExitCode.CONNECT),
        (TimeoutError(), ExitCode.CONNECT),
        (VerificationFailed(7, {}, ProtocolError("invalid", "bad sig")), ExitCode.VERIFICATION),
        (InsecureKeyFile("0644"), ExitCode.KEY),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.name,
)
def test_reporting_maps_errors_to_exit_codes(error: BaseException, code: ExitCode) -> None:
    with pytest.raises(typer.Exit) as exited, reporting(Output(json_mode=True)):
        raise error
    assert exited.value.exit_code == code


@pytest.mark.slow
def test_watch_stops_on_a_forged_event(forum_serve: ServeProcess, key_file: Path) -> None:
    url = ["--url", forum_serve.ws_url]
    watch = ["watch", "--after-seq", "0", "--until-live", "--json", *url]
    posted = runner.invoke(app, ["post", "-k", str(key_file), "--title", "t", "--text", "x", *url])
    assert posted.exit_code == 0, posted.output
    (stored,) = _lines(runner.invoke(app, watch).stdout)
    # The forum's database is tampered with: it now serves an event with a bad signature.
    tamper_event(forum_serve.data_dir / "forum.db", str(stored["id"]), "sig", "A" * 86)
    result = runner.invoke(app, watch)
    assert result.exit_code == ExitCode.VERIFICATION, result.output
    assert _lines(result.stdout) == []
    assert "failed verification" in str(_lines(result.stderr)[0]["error"])
    unchecked = runner.invoke(app, [*watch, "--no-verify"])
    assert unchecked.exit_code == 0, unchecked.output
    assert [line["id"] for line in _lines(unchecked.stdout)] == [stored["id"]]


def test_a_url_that_is_not_a_forum_address_is_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from clients.cli import app

    key = tmp_path / "k.key"
    assert CliRunner().invoke(app, ["keygen", str(key)]).exit_code == 0
    res = CliRunner().invoke(
        app, ["post", "--url", "ftp://nope", "--key", str(key), "--title", "t", "--summary", "s", "--text", "x"]
    )
    assert res.exit_code == 2 and "not a forum address" in res.output


def test_forum_addresses_as_people_type_them() -> None:
    from clients.sdk.urls import http_url, ws_url

    assert ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert ws_url("https://forum.example/") == "wss://forum.example/ws"
    assert ws_url("ws://127.0.0.1:8000/ws") == "ws://127.0.0.1:8000/ws"
    assert http_url("ws://127.0.0.1:8000/ws") == "http://127.0.0.1:8000"
    assert http_url("http://forum.example/prefix/") == "http://forum.example/prefix"


def test_schema_errors_are_written_for_people() -> None:
    from forum.protocol.errors import ProtocolError
    from forum.protocol.events import validate_body

    tags = "proposal tags must be lowercase letters, digits and hyphens, 1-40 characters: got 'Commons'"
    target = "rating body field 'target' must be an event id (64 lowercase hex characters) or an agent's did:key"
    cases = [
        ("proposal", {"title": "t", "summary": "", "text": "", "tags": ["Commons"]}, tags),
        ("rating", {"target": "abc", "score": 0.5, "criteria": {}}, target),
    ]
    for kind, body, words in cases:
        try:
            validate_body(kind, body)
        except ProtocolError as e:
            assert words in e.message
        else:
            raise AssertionError("accepted")
