#!/usr/bin/env bash
# The whole Linux round trip on this machine, then clean up:
#   build the .deb -> validate it -> apt-get install it -> run the installed app as an
#   unprivileged user (offscreen window to "ready" and a first reply, then `ghostdesk chat`)
#   -> reinstall over it (upgrade path) -> remove and purge -> the user's data is still there.
#
# Needs root (apt-get, dpkg), Debian 12 or similar with python3.11, and the project venv
# (.venv) to run the build. Environment:
#   SOURCE=DIR        project to package (default: this checkout)
#   OUT=DIR           where the .deb and the results go (default: dist/)
#   FIND_LINKS="D.."  extra wheel folders (default: the pip cache folder holding the compiled
#                     llama-cpp-python wheel, if there is one)
#   SKIP_BUILD=1      reuse $OUT/ghostdesk_<version>_amd64.deb
#   KEEP_DEB=0        delete the .deb at the end
# Results: $OUT/roundtrip-results.txt (also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SOURCE=${SOURCE:-$ROOT}
OUT=${OUT:-$ROOT/dist}
PY=${PY:-$ROOT/.venv/bin/python}
VERSION=$("$PY" -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['project']['version'])" "$SOURCE/pyproject.toml")
DEB="$OUT/ghostdesk_${VERSION}_amd64.deb"
WORK=$(mktemp -d /tmp/ghostdesk-roundtrip.XXXXXX)
TEST_HOME="$WORK/home"          # the home folder of the test user (uid nobody)
DATA="$TEST_HOME/.local/share/GhostDesk"
RESULTS="$OUT/roundtrip-results.txt"
INSTALLED=0

mkdir -p "$OUT" "$TEST_HOME"
chmod 755 "$WORK"
chown -R 65534:65534 "$TEST_HOME"
: > "$RESULTS"

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
step() { printf '\n== %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
    local rc=$?
    if [ "$INSTALLED" = 1 ]; then
        apt-get purge -y ghostdesk >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    if [ "${KEEP_DEB:-1}" = 0 ]; then rm -f "$DEB"; fi
    [ $rc = 0 ] && echo "round trip passed; results in $RESULTS" || echo "round trip FAILED (rc=$rc)"
}
trap cleanup EXIT

# Run a command as the unprivileged test user, with a clean environment and no display.
as_user() {
    setpriv --reuid=65534 --regid=65534 --clear-groups \
        env -i HOME="$TEST_HOME" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        QT_QPA_PLATFORM=offscreen "$@"
}

say "GhostDesk $VERSION round trip on $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

# --- build ---------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    step "build"
    if [ -z "${FIND_LINKS+x}" ]; then
        FIND_LINKS=$(find /root/.cache/pip -name 'llama_cpp_python-*.whl' -printf '%h\n' 2>/dev/null | head -1 || true)
    fi
    args=()
    for d in $FIND_LINKS; do args+=(--find-links "$d"); done
    t=$(now)
    "$PY" "$SOURCE/installers/linux/build_deb.py" --source "$SOURCE" --out "$OUT" "${args[@]}" \
        | tee "$WORK/build.json"
    say "build: $(since "$t") s"
fi
[ -f "$DEB" ] || fail "no package at $DEB"
say "package: $(basename "$DEB"), $(du -m "$DEB" | cut -f1) MiB ($(stat -c %s "$DEB") bytes), installed size $(( $(dpkg-deb -f "$DEB" Installed-Size) / 1024 )) MiB, $(dpkg-deb -c "$DEB" | wc -l) entries"

# --- static checks -------------------------------------------------------------------------
step "validate"
mkdir -p "$WORK/extract"
dpkg-deb -x "$DEB" "$WORK/extract"
dpkg-deb -e "$DEB" "$WORK/extract/DEBIAN"
desktop-file-validate "$WORK/extract/usr/share/applications/ghostdesk.desktop" \
    || fail "desktop-file-validate"
say "desktop-file-validate: ok"
for s in 16 24 32 48 64 128 256 512; do
    [ -s "$WORK/extract/usr/share/icons/hicolor/${s}x${s}/apps/ghostdesk.png" ] || fail "icon ${s}px missing"
done
if grep -El 'pip|curl|wget|https?://' "$WORK/extract/DEBIAN/"{preinst,postinst,prerm,postrm} 2>/dev/null; then
    fail "a maintainer script reaches for the network"
fi
say "maintainer scripts: $(ls "$WORK/extract/DEBIAN" | tr '\n' ' ')(no network, no data folder)"
if command -v lintian >/dev/null; then
    lintian --no-tag-display-limit "$DEB" > "$WORK/lintian.txt" 2>&1 || true
    say "lintian: $(grep -c '^E:' "$WORK/lintian.txt" || true) errors, $(grep -c '^W:' "$WORK/lintian.txt" || true) warnings"
fi
rm -rf "$WORK/extract"

# --- install -------------------------------------------------------------------------------
step "install"
# The dependencies first (from the distribution), so the timing below is this package alone.
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^$')
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $deps >/dev/null
t=$(now)
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$DEB" >/dev/null
INSTALLED=1
say "install (apt-get install ./$(basename "$DEB"), dependencies present): $(since "$t") s"
command -v ghostdesk >/dev/null || fail "ghostdesk is not on PATH"
[ -f /usr/share/applications/ghostdesk.desktop ] || fail "no desktop entry"
dpkg -V ghostdesk || fail "dpkg -V found modified files"
say "files: $(dpkg -L ghostdesk | wc -l) paths, dpkg -V clean, launcher $(command -v ghostdesk)"

# --- the installed app ---------------------------------------------------------------------
if as_user ghostdesk --smoke-test --help >/dev/null 2>&1; then
    SMOKE=(ghostdesk --smoke-test)
else  # before `--smoke-test` is wired into ghostdesk.app
    SMOKE=(/opt/ghostdesk/venv/bin/python -m ghostdesk.ui.smoke)
fi
step "smoke test, first launch (cold: the bundled model is assembled, probed, loaded)"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && say "page cache dropped" || say "page cache could not be dropped (container); cold = first launch"
as_user timeout 900 "${SMOKE[@]}" > "$WORK/smoke1.json" || fail "smoke test: $(cat "$WORK/smoke1.json")"
say "smoke, first launch: $(cat "$WORK/smoke1.json")"
step "smoke test, second launch (warm)"
as_user timeout 900 "${SMOKE[@]}" > "$WORK/smoke2.json" || fail "smoke test: $(cat "$WORK/smoke2.json")"
say "smoke, second launch: $(cat "$WORK/smoke2.json")"

step "ghostdesk chat (one-shot, the user's real data folder)"
t=$(now)
as_user timeout 900 ghostdesk chat "Hi! How are you today?" --json > "$WORK/chat.jsonl" \
    || fail "ghostdesk chat: $(tail -3 "$WORK/chat.jsonl")"
grep -q '"event": "reply_saved"' "$WORK/chat.jsonl" || fail "no reply_saved event"
first_token=$(grep -m1 '"event": "token"' "$WORK/chat.jsonl" >/dev/null && echo yes || echo no)
say "ghostdesk chat: $(since "$t") s for the whole command (tokens streamed: $first_token)"
say "reply: $(grep '"event": "reply_saved"' "$WORK/chat.jsonl" | cut -c1-300)"
[ -f "$DATA/ghostdesk.sqlite3" ] || fail "no database in $DATA"

count_messages() {
    /usr/bin/python3 - "$DATA/ghostdesk.sqlite3" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
ok = db.execute("PRAGMA integrity_check").fetchone()[0]
n = db.execute("SELECT count(*) FROM messages").fetchone()[0]
print(f"{n} messages, integrity {ok}")
PY
}
before=$(count_messages)
say "data folder after chat: $before ($(du -sh "$DATA" | cut -f1))"

# --- upgrade path: install over the installed package --------------------------------------
step "reinstall over the installed copy (the upgrade path of the maintainer scripts)"
t=$(now)
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >/dev/null
say "reinstall: $(since "$t") s"
as_user ghostdesk conversations list --json > "$WORK/list.json"
grep -q '"id"' "$WORK/list.json" || fail "the conversation is gone after reinstalling"
[ "$(count_messages)" = "$before" ] || fail "messages changed across the reinstall"
say "after reinstall: $(count_messages), conversation listed by the installed app"

# --- remove and purge ----------------------------------------------------------------------
step "remove, then purge"
t=$(now)
DEBIAN_FRONTEND=noninteractive apt-get remove -y ghostdesk >/dev/null
say "remove: $(since "$t") s"
[ ! -e /usr/bin/ghostdesk ] || fail "/usr/bin/ghostdesk is still there"
[ ! -e /opt/ghostdesk ] || fail "/opt/ghostdesk is still there"
[ ! -e /usr/share/applications/ghostdesk.desktop ] || fail "the desktop entry is still there"
[ "$(count_messages)" = "$before" ] || fail "user data changed by removal"
DEBIAN_FRONTEND=noninteractive apt-get purge -y ghostdesk >/dev/null
INSTALLED=0
[ "$(count_messages)" = "$before" ] || fail "user data changed by purge"
say "after remove + purge: program files gone; user data kept: $(count_messages), $(ls "$DATA" | tr '\n' ' ')"
say "PASSED"
