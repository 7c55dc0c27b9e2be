"""An earlier revision of the service, measured beside this one in the same run
(`bench/run.py --baseline REV`): its own files, its own database migrated by its
own migrations, started with its own gunicorn.conf.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.common import ROOT


def export(revision: str, dest: Path) -> str:
    """The tree of `revision` written to `dest` (git archive, so the work tree
    is untouched); returns the commit it names."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {commit} failed")
    return commit


def environment(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """`env` with `root`'s `service` package first on the import path, ahead of
    the one installed (editable) in the virtualenv."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))}


def migrate(root: Path, db_url: str) -> None:
    """Apply `root`'s own migrations to `db_url`, with its own migrate command."""
    subprocess.run(
        [sys.executable, "-m", "service.migrate"],
        cwd=root,
        env=environment(root, {**os.environ, "DATABASE_URL": db_url}),
        check=True,
        timeout=120,
    )
