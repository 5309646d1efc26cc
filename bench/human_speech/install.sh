#!/usr/bin/env bash
# Reproduce the human-speech clip set (16 kHz mono s16 WAV + manifest.jsonl) using only
# package registries (Debian apt, PyPI, npm).  usage: install.sh [TARGET_DIR]  (default /tmp/human-speech)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T="$(mkdir -p "${1:-/tmp/human-speech}" && cd "${1:-/tmp/human-speech}" && pwd)"
C="$T/.cache"; S="$C/src"; mkdir -p "$C/deb" "$C/pypi" "$C/npm" "$S"
die() { echo "install.sh: ERROR: $*" >&2; exit 1; }
[ -f "$T/build_clips.py" ] || cp "$HERE/build_clips.py" "$T/build_clips.py" 2>/dev/null || die "build_clips.py not found next to install.sh"

# 1. Debian packages (downloaded, not installed)
cd "$C/deb"
for p in asterisk-core-sounds-en asterisk-core-sounds-en-g722 alsa-utils; do
  if [ ! -d "$S/$p" ]; then
    ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 || true; apt-get download "$p"; } || die "cannot fetch Debian package $p"
    dpkg -x "$(ls ${p}_*.deb | head -1)" "$S/$p" || die "cannot unpack $p"
  fi
done

# 2. PyPI sdist pocketsphinx 5.1.1 (test data with transcripts)
if [ ! -d "$S/pocketsphinx-5.1.1" ]; then
  cd "$C/pypi"
  [ -f pocketsphinx-5.1.1.tar.gz ] || python3 -m pip download -q --no-deps --no-binary :all: pocketsphinx==5.1.1 -d . \
    || die "cannot fetch PyPI sdist pocketsphinx==5.1.1"
  tar xzf pocketsphinx-5.1.1.tar.gz -C "$S" pocketsphinx-5.1.1/test/data/goforward.raw pocketsphinx-5.1.1/test/data/cards \
    pocketsphinx-5.1.1/test/data/librivox pocketsphinx-5.1.1/LICENSE || die "cannot unpack pocketsphinx sdist"
fi

# 3. npm nodejs-whisper 0.3.1 (whisper.cpp samples: jfk.wav)
if [ ! -d "$S/nodejs-whisper" ]; then
  cd "$C/npm"
  [ -f nodejs-whisper-0.3.1.tgz ] || npm pack nodejs-whisper@0.3.1 --silent >/dev/null || die "cannot fetch npm nodejs-whisper@0.3.1"
  mkdir -p "$S/nodejs-whisper"
  tar xzf nodejs-whisper-0.3.1.tgz -C "$S/nodejs-whisper" package/cpp/whisper.cpp/bindings/go/samples/jfk.wav || die "cannot unpack nodejs-whisper"
fi

# 4. Python with PyAV (+numpy) for decoding/resampling
PY="${PYTHON:-python3}"
if ! $PY -c 'import av, numpy' 2>/dev/null; then
  PY="$C/venv/bin/python"
  if ! $PY -c 'import av, numpy' 2>/dev/null; then
    python3 -m venv "$C/venv" || die "cannot create venv"
    "$C/venv/bin/pip" install -q av numpy || die "cannot pip install av numpy"
  fi
fi

# 5. Convert + manifest
rm -rf "$T/clips"
$PY "$T/build_clips.py" "$S" "$T" || die "conversion failed"
echo "done: $T/manifest.jsonl"
