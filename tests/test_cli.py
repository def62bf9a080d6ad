"""Both services' command lines, run as a user runs them: help without starting anything, and a
clear word on which extra an install lacks."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("module", "commands"),
    [("gateway", ["serve", "reprocess", "uninstall"]), ("mt_photos_ai", ["serve", "export-onnx"])],
)
def test_help_lists_the_commands_and_starts_nothing(module, commands):
    done = run("-m", module, "--help")
    assert done.returncode == 0 and all(command in done.stdout for command in commands), done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr
    wrong = run("-m", module, "no-such-command")
    assert wrong.returncode == 2 and "invalid choice: 'no-such-command'" in wrong.stderr


def test_each_subcommand_has_its_help():
    reprocess = run("-m", "gateway", "reprocess", "--help")
    assert reprocess.returncode == 0 and "--all-missing" in reprocess.stdout and "--no-wait" in reprocess.stdout
    uninstall = run("-m", "gateway", "uninstall", "--help")
    assert (
        uninstall.returncode == 0
        and "--yes" in uninstall.stdout
        and "No Immich table" in " ".join(uninstall.stdout.split())
    )
    export = run("-m", "mt_photos_ai", "export-onnx", "--help")
    assert export.returncode == 0 and export.stdout.startswith("usage: mt-photos-ai export-onnx")


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [("gateway", "aiohttp", "[gateway]"), ("mt_photos_ai", "rapidocr", "[ai-cpu]")],
)
def test_an_install_without_the_extra_says_which_to_install(module, missing, extra):
    """Both console scripts come with any install of the package; each names the extra it needs."""
    code = f"import sys; sys.modules[{missing!r}] = None; from {module}.__main__ import main; main(['serve'])"
    done = run("-c", code)
    assert done.returncode == 1 and f"({missing} is missing)" in done.stderr and extra in done.stderr
