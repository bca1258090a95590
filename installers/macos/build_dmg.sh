#!/usr/bin/env bash
# Build GhostDesk.app with PyInstaller and pack it into GhostDesk-<version>.dmg.
#
#   installers/macos/build_dmg.sh            # from the project root, in an environment where
#                                            # GhostDesk and pyinstaller are installed
#
# Signing is optional and driven by the environment:
#   MACOS_SIGN_IDENTITY   "Developer ID Application: Name (TEAMID)"; signs the app (hardened
#                         runtime, installers/macos/entitlements.plist) and the .dmg
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD
#                         also notarize the .dmg with notarytool and staple the ticket
# Without MACOS_SIGN_IDENTITY the app is ad-hoc signed (runs on the build machine; other Macs
# need right-click > Open the first time).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(python -c "from importlib.metadata import version; print(version('ghostdesk'))")
APP=dist/GhostDesk.app
DMG=dist/GhostDesk-${VERSION}.dmg

python installers/common/make_icons.py build/icons
pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller installers/pyinstaller/ghostdesk.spec
[ -d "$APP" ] || { echo "PyInstaller did not produce $APP" >&2; exit 1; }

# The bundled app must start: the model probe runs the app's own executable with -m.
"$APP/Contents/MacOS/GhostDesk" -m ghostdesk.ui.smoke --no-reply --timeout 300

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --timestamp --options runtime \
        --entitlements installers/macos/entitlements.plist \
        --sign "$MACOS_SIGN_IDENTITY" "$APP"
else
    codesign --force --deep --sign - "$APP"
fi
codesign --verify --deep --strict "$APP"

STAGING=$(mktemp -d)
cp -R "$APP" "$STAGING/"
ln -s /Applications "$STAGING/Applications"
rm -f "$DMG"
hdiutil create -volname "GhostDesk ${VERSION}" -srcfolder "$STAGING" -ov -format UDZO "$DMG"
rm -rf "$STAGING"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
    if [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
        xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
            --password "$APPLE_APP_PASSWORD" --wait
        xcrun stapler staple "$DMG"
    fi
fi
echo "$DMG"
