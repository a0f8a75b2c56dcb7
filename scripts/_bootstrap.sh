# Shared set-up for scripts/demo and scripts/test (sourced, not run).
# Installs missing Debian packages (as root; otherwise prints the command),
# makes the virtualenv and installs the project into it when setup.cfg changed.
# BALIE_VENV chooses the virtualenv folder (default: .venv in the checkout).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BALIE_VENV:-$ROOT/.venv}

# What the terminal and its tests need from Debian / Raspberry Pi OS:
# xvfb + xauth: a virtual screen for the UI tests; libgl1 + libgl1-mesa-dri: OpenGL
# for Kivy (software rendering under Xvfb); libmtdev1: Kivy's multitouch input;
# xdotool: sends keys to the real window in tests; postgresql: the server binaries
# (initdb, pg_ctl, postgres under /usr/lib/postgresql/<version>/bin, from postgresql-15 on
# Debian 12) for the throwaway cluster the tests and benchmarks start themselves
# (tests/postgres.py; the system's own cluster, if any, is not used).
SYSTEM_PACKAGES=(xvfb xauth libgl1 libgl1-mesa-dri libmtdev1 xdotool postgresql)

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

ensure_system_packages() {
    local missing
    missing=$(missing_packages "${SYSTEM_PACKAGES[@]}")
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing="$missing python3-venv"
    fi
    missing=$(echo $missing)
    [ -z "$missing" ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "Missing system packages: $missing (install them with your package manager)" >&2
        return 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        echo "Installing system packages: $missing"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    else
        echo "Missing system packages. Install them with:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y $missing" >&2
        return 1
    fi
}

ensure_venv() {
    local extras=$1 stamp want
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating the virtualenv in $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    stamp="$VENV/.balie-installed"
    want="$extras $(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "Installing Balie and its dependencies into $VENV"
        "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
    fi
}

bootstrap() {
    ensure_system_packages
    ensure_venv "${1:-test}"
}
