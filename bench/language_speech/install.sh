#!/usr/bin/env bash
# Reproduce the non-English human-speech clip set (16 kHz mono s16 WAV + manifest.jsonl) from
# Debian's Asterisk core sounds (text + G.722 recordings, CC-BY-SA-3.0).
# usage: install.sh [TARGET_DIR]  (default ~/.cache/voicepipe/language-speech)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T="$(mkdir -p "${1:-$HOME/.cache/voicepipe/language-speech}" && cd "${1:-$HOME/.cache/voicepipe/language-speech}" && pwd)"
C="$T/.cache"; S="$C/src"; mkdir -p "$C/deb" "$S"
die() { echo "install.sh: ERROR: $*" >&2; exit 1; }

cd "$C/deb"
for lang in ${LANGUAGES:-es fr ru}; do
  for p in "asterisk-core-sounds-$lang" "asterisk-core-sounds-$lang-g722"; do
    if [ ! -d "$S/$p" ]; then
      ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 || true; apt-get download "$p"; } || die "cannot fetch Debian package $p"
      dpkg -x "$(ls ${p}_*.deb | head -1)" "$S/$p" || die "cannot unpack $p"
    fi
  done
done

PY="${PYTHON:-python3}"
$PY -c 'import av, numpy' 2>/dev/null || die "$PY needs PyAV and numpy (the project's .venv has them)"
rm -rf "$T/clips"
$PY "$HERE/build_clips.py" "$S" "$T" ${LANGUAGES:-es fr ru} || die "conversion failed"
echo "done: $T/manifest.jsonl"
