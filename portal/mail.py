"""The subject line of every email the portal sends."""

from __future__ import annotations

import re
import unicodedata

# EmailLog.subject's max_length; RFC 5322 wants header lines short, and mail clients cut anyway.
SUBJECT_MAX = 255

_SPACES = re.compile(r"\s+")


def email_subject(text: str) -> str:
    """`text` as one header line: controls and line breaks become spaces, runs of space one.

    Subjects carry text that printers, collectors and customers chose (a supply's description,
    a site or reseller name); Django refuses a header with a newline (BadHeaderError), so one
    stray newline in a supply description stopped its low-supply email."""
    cleaned = "".join(" " if unicodedata.category(c).startswith(("C", "Z")) else c for c in text)
    line = _SPACES.sub(" ", cleaned).strip()
    if len(line) > SUBJECT_MAX:
        line = line[: SUBJECT_MAX - 1].rstrip() + "…"
    return line
