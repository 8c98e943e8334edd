"""Shared fixtures for the black-box tests: the built binary and the model; the
OpenAPI check of every response."""
import os
import pathlib
import subprocess

import pytest

import openapi_check

REPO = pathlib.Path(__file__).resolve().parents[2]

# Every response from `embedstream serve` that http.client (urllib) receives in
# any e2e test is checked against docs/openapi.yaml (tests/e2e/openapi_check.py;
# EMBEDSTREAM_OPENAPI_CHECK=0 switches it off).
openapi_check.install_http_hook()


def pytest_terminal_summary(terminalreporter):
    n = openapi_check.checked
    if n["responses"] or n["frames"]:
        terminalreporter.write_line(
            f"docs/openapi.yaml: {n['responses']} responses and {n['frames']} SSE frames "
            "from embedstream checked")


@pytest.fixture(scope="session")
def binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("EMBEDSTREAM_BIN", REPO / "build/release/embedstream"))
    assert path.exists(), f"{path} not built (scripts/build.sh)"
    return path


@pytest.fixture(scope="session")
def model_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("EMBEDSTREAM_MODEL_DIR", REPO / "models/all-MiniLM-L6-v2"))
    assert (path / "config.json").exists(), f"no model in {path} (scripts/fetch_model.sh)"
    return path


@pytest.fixture(scope="session")
def run(binary, model_dir):
    """run(args, stdin) -> CompletedProcess with text stdout/stderr."""

    def _run(args, stdin: bytes = b"", env_extra=None, timeout=300):
        env = dict(os.environ)
        env["EMBEDSTREAM_MODEL_DIR"] = str(model_dir)
        env.update(env_extra or {})
        return subprocess.run([str(binary), *args], input=stdin, capture_output=True,
                              env=env, timeout=timeout)

    return _run
