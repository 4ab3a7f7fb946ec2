#!/usr/bin/env bash
# Install the one-folder build for the current user (or system-wide with PREFIX=/opt/... as root).
#
#   packaging/linux/install.sh [DIST_DIR]        # default DIST_DIR: dist/FaderDesktop
#   packaging/linux/install.sh --uninstall
#
# Copies DIST_DIR to $APP_DIR (default ~/.local/opt/FaderDesktop), links $BIN_DIR/fader-desktop to the
# executable, installs the .desktop file (Exec= rewritten to the installed path) and the icon into the
# hicolor theme, and refreshes the desktop and icon caches when the tools exist.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APP_DIR="${APP_DIR:-$HOME/.local/opt/FaderDesktop}"
BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
APPS="$DATA_HOME/applications"
ICONS="$DATA_HOME/icons/hicolor"

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$APPS" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$ICONS" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$APP_DIR" "$BIN_DIR/fader-desktop" "$APPS/fader-desktop.desktop" \
           "$ICONS/scalable/apps/fader-desktop.svg" "$ICONS/256x256/apps/fader-desktop.png"
    refresh
    echo "uninstalled Fader Desktop"
    exit 0
fi

DIST="${1:-$ROOT/dist/FaderDesktop}"
[ -x "$DIST/FaderDesktop" ] || { echo "install.sh: $DIST/FaderDesktop not found (run scripts/build_app.sh first)" >&2; exit 2; }

mkdir -p "$(dirname "$APP_DIR")" "$BIN_DIR" "$APPS" "$ICONS/scalable/apps" "$ICONS/256x256/apps"
rm -rf "$APP_DIR.new" && cp -a "$DIST" "$APP_DIR.new" && rm -rf "$APP_DIR" && mv "$APP_DIR.new" "$APP_DIR"
ln -sfn "$APP_DIR/FaderDesktop" "$BIN_DIR/fader-desktop"
install -m 644 "$ROOT/packaging/icons/fader-desktop.svg" "$ICONS/scalable/apps/fader-desktop.svg"
install -m 644 "$ROOT/packaging/icons/fader-desktop.png" "$ICONS/256x256/apps/fader-desktop.png"
sed -e "s|^Exec=FaderDesktop|Exec=\"$APP_DIR/FaderDesktop\"|" -e "s|^TryExec=.*|TryExec=$APP_DIR/FaderDesktop|" \
    "$HERE/fader-desktop.desktop" > "$APPS/fader-desktop.desktop"
chmod 644 "$APPS/fader-desktop.desktop"
refresh
echo "installed $APP_DIR; command: $BIN_DIR/fader-desktop; menu entry: $APPS/fader-desktop.desktop"
