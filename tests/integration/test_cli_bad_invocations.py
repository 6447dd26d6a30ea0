"""Bad invocations of the installed ``choreo``: a non-zero exit, one error line, no traceback.

Each case is something a user can get wrong: a missing file, a directory or an unreadable file
where a file belongs, garbage JSON or audio, an invalid number in an option or a setting, a
database, Pub/Sub or credentials that are not there. Log records of commands that configure
logging (JSON lines with a ``severity``) may come before the error line; nothing else may.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreography.moves.bundle import write_bundle
from choreography.moves.demo_library import demo_drafts
from choreography.moves.render import ClipFormat

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHOREO = str(ROOT / ".venv" / "bin" / "choreo")
EXAMPLE = ROOT / "docs" / "examples" / "blueprint-song.json"
CLOSED = "127.0.0.1:9"  # the discard port: nothing listens there
NO_DB = {"DATABASE_URL": f"postgresql://choreo:choreo@{CLOSED}/choreo", "DB_CONNECT_TIMEOUT": "3"}
NO_CREDENTIALS = {
    "STORAGE_EMULATOR_HOST": None,
    "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json",
    "NO_GCE_CHECK": "true",
}
# Root reads any file: drop the capabilities that let it, so "unreadable" means unreadable.
AS_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if os.geteuid() == 0 and shutil.which("setpriv")
    else []
)

# (id, arguments with {ws} for the workspace, environment changes, exit code, text in the error)
CASES: list[tuple[str, list[str], dict[str, str | None], int, str]] = [
    ("analyze-missing", ["analyze", "{ws}/missing.wav"], {}, 2, "does not exist"),
    ("analyze-directory", ["analyze", "{ws}/adir"], {}, 2, "does not exist or is not a file"),
    ("analyze-garbage", ["analyze", "{ws}/garbage.wav"], {}, 2, "cannot be decoded as audio"),
    ("analyze-unreadable", ["analyze", "{ws}/unreadable.wav"], {}, 2, "is not readable"),
    ("plan-song-missing", ["plan", "--song", "{ws}/missing.wav", "--library", "{ws}/lib",
                           "--out", "{ws}/o.json"], {}, 2, "no such file"),
    ("plan-song-directory", ["plan", "--song", "{ws}/adir", "--library", "{ws}/lib",
                             "--out", "{ws}/o.json"], {}, 2, "no such file"),
    ("plan-song-unreadable", ["plan", "--song", "{ws}/unreadable.wav", "--library", "{ws}/lib",
                              "--out", "{ws}/o.json"], {}, 2, "is not readable"),
    ("plan-library-missing", ["plan", "--song", "{ws}/song.wav", "--library", "{ws}/nolib",
                              "--out", "{ws}/o.json"], {}, 2, "manifest"),
    ("plan-library-garbage", ["plan", "--song", "{ws}/song.wav", "--library", "{ws}/badlib",
                              "--out", "{ws}/o.json"], {}, 2, "Expecting property name"),
    ("plan-library-unreadable", ["plan", "--song", "{ws}/song.wav", "--library", "{ws}/unlib",
                                 "--out", "{ws}/o.json"], {}, 2, "Permission denied"),
    ("plan-duration-not-a-number", ["plan", "--song", "{ws}/song.wav", "--duration", "abc",
                                    "--out", "{ws}/o.json"], {}, 2, "'--duration'"),
    ("plan-duration-too-short", ["plan", "--song", "{ws}/song.wav", "--duration", "5",
                                 "--out", "{ws}/o.json"], {}, 2, "greater than or equal to 15"),
    ("plan-out-is-a-directory", ["plan", "--song", "{ws}/song.wav", "--library", "{ws}/lib",
                                 "--style", "hip-hop", "--out", "{ws}/adir"], {}, 1,
     "Is a directory"),
    ("plan-no-database", ["plan", "--song", "{ws}/song.wav", "--out", "{ws}/o.json"], NO_DB, 2,
     "cannot connect to PostgreSQL"),
    ("plan-setting-not-a-number", ["plan", "--song", "{ws}/song.wav", "--out", "{ws}/o.json"],
     {"DB_CONNECT_TIMEOUT": "abc"}, 1, "DB_CONNECT_TIMEOUT"),
    ("plan-missing-option", ["plan"], {}, 2, "Missing option '--song'"),
    ("render-missing", ["render", "{ws}/missing.json"], {}, 2, "No such file"),
    ("render-directory", ["render", "{ws}/adir"], {}, 2, "Is a directory"),
    ("render-garbage", ["render", "{ws}/garbage.json"], {}, 2, "not valid JSON"),
    ("render-unreadable", ["render", "{ws}/unreadable.json"], {}, 2, "is not readable"),
    ("render-song-not-stored", ["render", "{ws}/bp.json", "--out", "{ws}/v.mp4"], {}, 3,
     "`choreo plan --song FILE` stores the song"),
    ("render-setting-not-a-number", ["render", "{ws}/bp.json"], {"JOB_X264_CRF": "abc"}, 1,
     "JOB_X264_CRF"),
    ("blueprint-validate-garbage", ["blueprint", "validate", "{ws}/garbage.json"], {}, 2,
     "not valid JSON"),
    ("blueprint-validate-unreadable", ["blueprint", "validate", "{ws}/unreadable.json"], {}, 2,
     "is not readable"),
    ("blueprint-inspect-png-in-missing-folder", ["blueprint", "inspect", "{ws}/bp.json", "--png",
                                                 "{ws}/nodir/t.png"], {"DATABASE_URL": ""}, 1,
     "No such file or directory"),
    ("blueprint-inspect-song-garbage", ["blueprint", "inspect", "{ws}/bp.json", "--song",
                                        "{ws}/garbage.wav", "--png", "{ws}/t.png"],
     {"DATABASE_URL": ""}, 2, "cannot be decoded as audio"),
    ("moves-import-no-database", ["moves", "import", "{ws}/lib"], NO_DB, 1,
     "cannot connect to PostgreSQL"),
    ("moves-import-bvh-garbage", ["moves", "import-bvh", "{ws}/garbage.json", "--bpm", "100"],
     {}, 1, "expected 'HIERARCHY'"),
    ("moves-import-bvh-bpm-not-a-number", ["moves", "import-bvh", "{ws}/x.bvh", "--bpm", "abc"],
     {}, 2, "'--bpm'"),
    ("moves-import-salsa-no-corpus", ["moves", "import-salsa", "{ws}/adir"], {}, 1,
     "no 60_NN_scaled.bvh"),
    ("moves-import-salsa-missing", ["moves", "import-salsa", "{ws}/missing"], {}, 1,
     "not a folder of CMU salsa captures"),
    ("moves-import-salsa-bad-trials", ["moves", "import-salsa", "--trials", "99"], {}, 1,
     "no captures of trial 99"),
    ("moves-import-salsa-bad-setting", ["moves", "import-salsa"], {"CMU_SALSA_TRIALS": "three"},
     1, "CMU_SALSA_TRIALS"),
    ("moves-demo-library-bad-size", ["moves", "demo-library", "{ws}/dl", "--size", "big"], {}, 1,
     "--size must be WIDTHxHEIGHT"),
    ("moves-demo-library-odd-size", ["moves", "demo-library", "{ws}/dl", "--size", "321x180"], {},
     1, "clip size must be even"),
    ("moves-demo-library-into-a-file", ["moves", "demo-library", "{ws}/afile"], {}, 1,
     "Not a directory"),
    ("moves-log-level-unknown", ["moves", "import", "{ws}/lib"], {"LOG_LEVEL": "LOUD"}, 1,
     "LOG_LEVEL: unknown level 'LOUD'"),
    ("db-status-no-database", ["db", "status"], NO_DB, 1, "cannot connect to PostgreSQL"),
    ("db-status-bad-url", ["db", "status"], {"DATABASE_URL": "not-a-url"}, 1,
     "not a valid PostgreSQL connection string"),
    ("db-status-setting-not-a-number", ["db", "status"], {"DB_CONNECT_TIMEOUT": "abc"}, 1,
     "DB_CONNECT_TIMEOUT"),
    ("status-no-database", ["status"], NO_DB, 1, "cannot connect to PostgreSQL"),
    ("status-interval-not-a-number", ["status", "--interval", "abc"], {}, 2, "'--interval'"),
    ("tasks-reap-no-database", ["tasks", "reap", "--dry-run"], NO_DB, 1, "cannot connect"),
    ("tasks-reap-setting-not-a-number", ["tasks", "reap"], {"REAPER_INTERVAL": "abc"}, 1,
     "REAPER_INTERVAL"),
    ("dlq-audit-no-database", ["dlq", "audit"], NO_DB, 1, "cannot connect to PostgreSQL"),
    ("dlq-list-since-garbage", ["dlq", "list", "sub", "--since", "yesterday"], {}, 1,
     "not an ISO 8601 time"),
    ("dlq-replay-rate-not-a-number", ["dlq", "replay", "sub", "--rate", "abc"], {}, 2,
     "'--rate'"),
    ("dlq-replay-setting-not-a-number", ["dlq", "replay", "sub"], {"DLQ_REPLAY_RATE": "abc"}, 1,
     "DLQ_REPLAY_RATE"),
    ("request-song-no-database", ["request", "song", "--song-id", "x"], NO_DB, 1,
     "cannot connect to PostgreSQL"),
    ("topology-apply-no-credentials", ["topology", "apply", "--project", "cli-errors"],
     NO_CREDENTIALS, 1, "pass --no-buckets"),
    ("topology-apply-no-pubsub", ["topology", "apply", "--no-buckets", "--project", "cli-errors"],
     {"PUBSUB_EMULATOR_HOST": CLOSED}, 1, "Pub/Sub did not answer"),
    ("worker-unknown", ["worker", "bogus"], {}, 1, "unknown service 'bogus'"),
    ("relay-no-database", ["relay", "--once"], NO_DB, 1, "cannot connect to PostgreSQL"),
    ("demo-song-missing", ["demo", "--song", "{ws}/missing.wav"], NO_DB, 1, "no such file"),
    ("unknown-command", ["bogus"], {}, 2, "No such command 'bogus'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files to get wrong: garbage, a folder, unreadable ones, a song, a library, a blueprint."""
    ws = tmp_path_factory.mktemp("bad-invocations")
    (ws / "adir").mkdir()
    (ws / "afile").write_text("")
    (ws / "garbage.json").write_text("{not json")
    (ws / "garbage.wav").write_bytes(b"RIFF? no: just some bytes\n" * 100)
    (ws / "badlib").mkdir()
    (ws / "badlib" / "manifest.json").write_text("{not json")
    (ws / "unlib").mkdir()
    for path in (ws / "unreadable.json", ws / "unreadable.wav", ws / "unlib" / "manifest.json"):
        path.write_text("{}")
        path.chmod(0)
    song = synthesize_song(112.0, structure=(("intro", 2), ("verse", 4), ("chorus", 4)), seed=3)
    write_wav(ws / "song.wav", song.y, song.sr)
    drafts = [d for d in demo_drafts() if d.style == "hip-hop"]
    write_bundle(ws / "lib", drafts, clip_format=ClipFormat(64, 64, 12))
    shutil.copyfile(EXAMPLE, ws / "bp.json")
    return ws


def _is_log_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "severity" in record


@pytest.mark.parametrize(("args", "changes", "code", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_bad_invocation_fails_in_one_line(
    workspace: Path, args: list[str], changes: dict[str, str | None], code: int, text: str
) -> None:
    """The documented exit code, one error line naming the problem, and no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_BACKEND", "CHOREO_DEBUG")}
    env.update(STORAGE_ROOT=str(workspace / "storage"), HOME=str(workspace), COLUMNS="200")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    argv = [CHOREO, *(a.format(ws=workspace) for a in args)]
    done = subprocess.run(
        [*AS_USER, *argv], env=env, cwd=workspace, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in errors if not _is_log_record(line)]
    assert len(errors) == 1, done.stderr
    assert text in errors[0]
    assert done.returncode == code, done.stderr
