#!/usr/bin/env bash
# Creates the SNMP simulator's own virtualenv (used by the collector tests and benchmark) and
# prints its path. snmpsim drops privileges when started as root, so the venv is built from the
# system Python (/usr/bin/python3): a pyenv Python under /root is unreadable after the drop.
# Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${INKMETER_SNMPSIM_VENV:-$repo/.venv-snmpsim}
python=${INKMETER_SNMPSIM_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3)
pins="snmpsim==1.2.2 pysmi==2.0.0 pysnmp==7.1.30 pyasn1==0.6.5"
stamp="$venv/.inkmeter-pins"
if [ -x "$venv/bin/snmpsim-command-responder" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pins" ]; then
    echo "$venv"
    exit 0
fi
"$python" -m venv "$venv" >&2
# pysmi: snmpsim 1.2.2 imports it without declaring it.
"$venv/bin/pip" install --quiet --disable-pip-version-check $pins >&2
echo "$pins" > "$stamp"
echo "$venv"
