"""Milepost as a team installs it: the wheels of Milepost and of its Python client, built from
this checkout, installed into a fresh virtual environment outside it, and `milepost run`
started there (embedded mode), then used through the installed client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.browser.conftest import free_port
from tests.serving import serving

ROOT = Path(settings.BASE_DIR)
UV = ROOT / ".tools" / "bin" / "uv"
# What a fresh shell would have: nothing of this test run's database, broker or settings.
LEFT_OUT = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG")


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    finished = subprocess.run(  # noqa: S603 - our own build and install commands
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = str(UV) if UV.exists() else shutil.which("uv")
    assert uv, "uv is needed to build the wheels (make install puts it in .tools/)"
    home = tmp_path_factory.mktemp("team")
    dist = home / "dist"
    run(uv, "build", "--wheel", "--out-dir", dist, ROOT)
    run(uv, "build", "--wheel", "--out-dir", dist, ROOT / "clients" / "python")
    run(uv, "venv", "--quiet", "--python", "python3.11", home / "venv")
    wheels = sorted(dist.glob("*.whl"))
    run(uv, "pip", "install", "--quiet", "--python", home / "venv" / "bin" / "python", *wheels)
    return home


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEFT_OUT}
    env["PATH"] = f"{home / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_carries_templates_static_files_and_the_sdk_but_no_config_package(
    installed: Path,
) -> None:
    (wheel,) = (installed / "dist").glob("milepost-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if "dist-info" not in name}

    assert top_level == {"milepost", "onboarding", "analytics", "engagement"}
    assert "milepost/static/milepost/milepost.js" in names
    assert "milepost/templates/engagement/email.html" in names
    assert any(name.endswith("dist-info/licenses/LICENSE") for name in names)


def test_milepost_run_serves_from_the_installed_wheel(installed: Path) -> None:
    env = clean_env(installed)
    keys = json.loads(
        run("milepost", "migrate", "-v0", cwd=installed, env=env)
        + run("milepost", "create_workspace", "Acme", cwd=installed, env=env)
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        ["milepost", "run", "--port", str(port)],
        probe=f"{url}/api/v1/health",
        env=env,
        cwd=installed,
    ) as health:
        sdk = httpx.get(f"{url}/static/milepost/milepost.js")
        client_run = run(
            installed / "venv" / "bin" / "python",
            "-c",
            "import sys; from milepost_client import Milepost\n"
            "with Milepost(sys.argv[1], sys.argv[2]) as m:\n"
            "    print(m.identify('user-1', {'plan': 'trial'}).created)",
            url,
            keys["secret_key"],
            cwd=installed,
            env=env,
        )
    no_config = subprocess.run(  # noqa: S603
        [installed / "venv" / "bin" / "python", "-c", "import config"],
        cwd=installed,
        capture_output=True,
        check=False,
    )

    assert health.json() == {"status": "ok"}
    assert sdk.status_code == 200
    assert "javascript" in sdk.headers["content-type"]
    assert client_run.strip() == "True"
    assert (installed / "milepost-data" / "milepost.sqlite3").is_file()
    assert b"No module named 'config'" in no_config.stderr


def test_milepost_run_demo_serves_the_acme_app_from_the_installed_wheel(installed: Path) -> None:
    env = clean_env(installed)
    port, demo_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        ["milepost", "run", "--demo", "--port", str(port), "--demo-port", str(demo_port)],
        probe=f"http://localhost:{demo_port}/dashboard",  # answers once the seeding is done
        env=env,
        cwd=installed,
        seconds=120,
    ) as dashboard:
        sdk = httpx.get(f"{url}/static/milepost/milepost.js")
        admin = httpx.get(f"{url}/admin/login/")

    assert dashboard.status_code == 200
    assert f'src="{url}/static/milepost/milepost.js" data-key="pk_' in dashboard.text
    assert "The demo workspace does not exist yet" not in dashboard.text
    assert sdk.status_code == 200
    assert admin.status_code == 200
