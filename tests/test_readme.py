"""The README's session is real: run it as a doctest."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_session_runs_as_shown():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(README.read_text(), {}, "README", str(README), 0)
    assert test.examples, "the README lost its session"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0


# -- every shell command of the README ------------------------------------------------------------
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import httpx  # noqa: E402

ROOT = README.parent
BIN = Path(sys.executable).parent


def _bash_blocks() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    return [[ln for ln in b.splitlines() if ln.strip() and not ln.lstrip().startswith("#")] for b in blocks]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_setup_commands_are_the_scripts() -> None:
    setup = _bash_blocks()[0]
    assert [line.split()[0] for line in setup] == ["scripts/lab", "scripts/test"]
    for line in setup:
        assert os.access(ROOT / line.split()[0], os.X_OK)
    # scripts/lab is run by tests/notebook/test_tutorials.py (--check); scripts/test runs this suite.


def test_serving_commands_run_as_written(tmp_path: Path) -> None:
    """From a copy of the repository's convex/ folder: dev, then the data commands (the
    placeholder KEY becomes the printed admin key, port 3210 a free port)."""
    serving, commands = _bash_blocks()[1], _bash_blocks()[2]
    assert len(serving) == 1 and serving[0].startswith("convex-notebook dev convex/ --db data/app.sqlite3")
    shutil.copytree(ROOT / "convex", tmp_path / "convex")
    port = str(_free_port())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CONVEX_NOTEBOOK_ADMIN_KEY", None)
    server = subprocess.Popen(["bash", "-c", "exec " + serving[0].replace("3210", port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    key = ""
    try:
        seen = []
        for line in server.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if "admin key: " in line:
                key = line.split("admin key: ")[1].split()[0].rstrip(")")
            if "watching" in line:
                break
        assert key, "".join(seen)
        assert "tasks: add, list, toggle" in "".join(seen)
        outputs = {}
        for command in commands:
            if "--db" in command and server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
            shown = command.replace("KEY", key).replace("3210", port)
            done = subprocess.run(["bash", "-c", shown], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (command, done.stderr)
            outputs[command.split()[1]] = done.stdout + done.stderr
        assert len(list((tmp_path / "backups").glob("snapshot_*.zip"))) == 1
        assert '"hi"' in outputs["data"]
        assert 'Added 1 documents to table "tasks"' in outputs["import"]
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def test_version_and_demo() -> None:
    done = subprocess.run([str(BIN / "convex-notebook"), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("convex-notebook ")
    demo = subprocess.run([sys.executable, "-m", "convex_notebook.demo"], capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
