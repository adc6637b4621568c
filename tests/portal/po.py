"""A reader of gettext .po files, enough for the checks of test_i18n.py (no polib in the lock):
entries with their context, plural forms, flags and translations."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def is_translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())

    def catalog_key(self) -> str | tuple[str, int]:
        """The key Python's gettext uses for this entry (its first plural form)."""
        key = self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"
        return (key, 0) if self.msgid_plural is not None else key


def parse(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    entry = Entry()
    last: tuple[str, int | None] | None = None

    def finish() -> None:
        nonlocal entry, last
        if last is not None:
            entries.append(entry)
        entry, last = Entry(), None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            if last is not None:
                finish()
            entry.flags |= {f.strip() for f in line[2:].split(",")}
            continue
        if line.startswith("#:"):
            if last is not None:
                finish()
            entry.references += line[2:].split()
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            text = ast.literal_eval(line)
            assert last is not None, f"continuation without a keyword in {path}: {raw}"
            name, index = last
            if name == "msgstr":
                entry.msgstr[index or 0] += text
            else:
                setattr(entry, name, (getattr(entry, name) or "") + text)
            continue
        keyword, _, rest = line.partition(" ")
        text = ast.literal_eval(rest)
        if keyword.startswith("msgstr["):
            index = int(keyword[7:-1])
            entry.msgstr[index] = text
            last = ("msgstr", index)
        elif keyword == "msgstr":
            entry.msgstr[0] = text
            last = ("msgstr", 0)
        elif keyword in ("msgid", "msgid_plural", "msgctxt"):
            if keyword in ("msgid", "msgctxt") and last is not None and last[0] == "msgstr":
                finish()
            setattr(entry, keyword, text)
            last = (keyword, None)
    finish()
    return entries
