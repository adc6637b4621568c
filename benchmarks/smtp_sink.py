"""A minimal SMTP server for the throwaway stack (benchmarks/stack.py): it accepts every message
and stores it, one file per message, only once the final "." of DATA has arrived. A message
whose sender died mid-DATA is therefore never stored, as with a real mail server.

Python 3.11's `smtpd` is deprecated and aiosmtpd is not a dependency, so this is the few SMTP
verbs Django's SMTP backend uses, over asyncio. While the file `stall` exists in the mail
directory, every session waits before answering DATA (with a `waiting-<n>` file per waiting
session), so that a test can kill the sender at that moment.

    python benchmarks/smtp_sink.py --port 2525 --dir /tmp/mail
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
from pathlib import Path

STALL_FLAG = "stall"
WAITING_PREFIX = "waiting-"
MESSAGE_SUFFIX = ".eml"
MAX_LINE = 1024 * 1024


class Sink:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sessions = itertools.count(1)
        self.messages = itertools.count(1)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = next(self.sessions)

        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await reply("220 inkmeter-sink ESMTP")
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line.decode("latin-1").strip().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    await reply("250-inkmeter-sink\r\n250-8BITMIME\r\n250 SMTPUTF8")
                elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                    await reply("250 OK")
                elif verb == "DATA":
                    await self._stall(number)
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    data = await self._data(reader)
                    if data is None:
                        return  # the sender went away before the final "."
                    self._store(data)
                    await reply("250 OK: queued")
                elif verb == "QUIT":
                    await reply("221 Bye")
                    return
                else:
                    await reply("502 Command not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _stall(self, number: int) -> None:
        flag = self.directory / STALL_FLAG
        if not flag.exists():
            return
        waiting = self.directory / f"{WAITING_PREFIX}{number}"
        waiting.touch()
        try:
            while flag.exists():
                await asyncio.sleep(0.1)
        finally:
            waiting.unlink(missing_ok=True)

    async def _data(self, reader: asyncio.StreamReader) -> bytes | None:
        lines: list[bytes] = []
        while True:
            line = await reader.readline()
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)

    def _store(self, data: bytes) -> None:
        # Written aside and renamed: a reader never sees half a message.
        name = f"{next(self.messages):06d}{MESSAGE_SUFFIX}"
        partial = self.directory / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, self.directory / name)


async def serve(port: int, directory: Path) -> None:
    sink = Sink(directory)
    server = await asyncio.start_server(sink.session, "127.0.0.1", port, limit=MAX_LINE)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
