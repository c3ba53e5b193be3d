"""A plain TCP proxy in a process of its own, for the fault suite's `reconnect` scenario: the
load balancer in front of Milepost. SIGKILL drops every connection through it at once, and a
new one starts on the same port in a fraction of the time a Milepost process takes.

    python bench/faults_proxy.py LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def main(listen: int, upstream: int) -> None:
    async def handle(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            up_in, up_out = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(pipe(client_in, up_out), pipe(up_in, client_out))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        pass
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
