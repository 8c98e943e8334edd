"""Shared fixtures for the black-box tests: the built binary and the model."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


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
