"""The `milepost` command of an installed Milepost (`pip install milepost`).

- `milepost run [--host H] [--port P] [--demo]`: migrate the database, then serve HTTP and
  WebSockets on one port (with `--demo`, also seed the Acme demo workspace and serve its host
  app on `--demo-port`, as `make run` does in a checkout).
- `milepost <command> …`: any management command, as `manage.py` in a checkout
  (`milepost createsuperuser`, `milepost create_workspace Acme --origin https://app.acme.com`).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
    if argv[1:2] == ["run"]:
        run(argv[2:])
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


def run(args: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="milepost run", description="Migrate the database and serve Milepost."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--demo", action="store_true", help="Seed the Acme demo and serve its host app."
    )
    parser.add_argument("--demo-port", type=int, default=8001)
    options = parser.parse_args(args)
    # Links in admin and e-mails point at the server just started unless PUBLIC_URL says
    # otherwise (a proxy in front), as `make run` does.
    os.environ.setdefault("PUBLIC_URL", f"http://{options.host}:{options.port}")
    os.environ.setdefault("DEMO_HOST_URL", f"http://localhost:{options.demo_port}")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    if options.demo:
        call_command("seed_demo")
        call_command("seed_demo_engagement")
    call_command(
        "run_milepost",
        host=options.host,
        port=options.port,
        demo_port=options.demo_port if options.demo else 0,
    )
