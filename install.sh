#!/usr/bin/env bash
# install.sh - install the isstreamer agent (distribution isstreamer-agent) on a Raspberry Pi or
# any Linux box, in its own virtual environment, with optional systemd services.
#
# Today, from a wheel built in a checkout (python3 -m build makes dist/*.whl), copied over:
#
#     bash install.sh --from isstreamer_agent-0.1.0-py3-none-any.whl
#
# Once published: ISSTREAMER_INSTALL_URL is the raw URL of this file in the project's
# repository (of the form https://raw.githubusercontent.com/OWNER/REPO/main/install.sh), and
#
#     curl -fsSL "$ISSTREAMER_INSTALL_URL" | bash
#     curl -fsSL "$ISSTREAMER_INSTALL_URL" | bash -s -- --service metrics --yes
#
# installs isstreamer-agent from the package index. `bash install.sh --help` lists the options.
#
# What it does, and nothing else:
#   - checks for python3 >= 3.9 and its venv module (on Debian / Raspberry Pi OS it names the
#     apt package, or installs it with apt-get when run as root with --yes);
#   - creates (or upgrades in place) a venv in PREFIX/venv and pip installs the source into it:
#     never sudo pip, never the system Python's site-packages (PEP 668-safe). When pip fails it
#     shows pip's last lines and removes the venv it had just made;
#   - links BIN_DIR/isstreamer to the venv's command;
#   - writes the access key (and bucket key/name) to the ini file the agent reads, mode 0600,
#     with `isstreamer config init`; it never asks for your account e-mail or password;
#   - with --service, installs systemd units running `isstreamer metrics` and/or
#     `isstreamer serve` (the dashboard): user units, or hardened system units as root;
#   - records what it installed, so that --uninstall needs no other option.
# Re-running it upgrades in place. --uninstall undoes it and keeps your config and data
# unless --purge is given.
#
# Environment: ISSTREAMER_SOURCE (what to pip install when --from is not given),
# ISSTREAMER_PYTHON (the interpreter that creates the venv, default python3) and
# ISSTREAMER_SYSROOT (a directory standing in for / for the system paths /etc and /var/lib;
# with it, systemctl is never run: a system install tried out in a throwaway directory).
#
# The whole script is made of functions called on its last line, so a truncated download
# runs nothing.

set -euo pipefail

readonly DEFAULT_SOURCE="isstreamer-agent"
ISSTREAMER_SOURCE="${ISSTREAMER_SOURCE:-$DEFAULT_SOURCE}"
ISSTREAMER_PYTHON="${ISSTREAMER_PYTHON:-python3}"
ISSTREAMER_SYSROOT="${ISSTREAMER_SYSROOT:-}"

readonly MIN_PYTHON="3.9"
readonly KNOWN_SERVICES="metrics collector"
# What earlier versions of this script called the metrics unit; replaced by isstreamer-metrics.
readonly LEGACY_UNIT="isstreamer.service"
readonly DASHBOARD_URL="http://127.0.0.1:8080"
readonly PIP_TAIL_LINES=25
# The collector's files beside its database (isstreamer.collector.keys, SQLite's WAL mode).
readonly COLLECTOR_FILES="collector.db collector.db-wal collector.db-shm collector.key"

# ---------------------------------------------------------------------------- messages

say() {
    printf '%s\n' "$*"
}

warn() {
    printf 'isstreamer install: warning: %s\n' "$*" >&2
}

die() {
    printf 'isstreamer install: error: %s\n' "$*" >&2
    exit 1
}

on_unexpected_error() {
    printf 'isstreamer install: error: unexpected failure (exit %s at line %s); the steps above it were done, the rest were not. Re-running is safe.\n' "$1" "$2" >&2
}

usage() {
    cat <<EOF
Install the isstreamer telemetry agent in its own virtual environment.

Usage: bash install.sh [options]
       curl -fsSL "\$ISSTREAMER_INSTALL_URL" | bash -s -- [options]
       (ISSTREAMER_INSTALL_URL: the raw URL of install.sh in the project's repository)

Options:
  --from SRC           what to pip install: a wheel or sdist file, a checkout, a git URL
                       (git+https://...) or a name on the package index.
                       Default: ${ISSTREAMER_SOURCE}
  --prefix DIR         the venv goes in DIR/venv. Default: ~/.local/share/isstreamer,
                       or /opt/isstreamer as root
  --bin-dir DIR        where the isstreamer command is linked. Default: ~/.local/bin,
                       or /usr/local/bin as root
  --access-key-stdin   read the Initial State access key from standard input. Without it,
                       a hidden prompt asks for it when a terminal is attached (not with --yes)
  --bucket-key KEY     bucket key to write in the config
  --bucket-name NAME   bucket name to write in the config (default_bucket)
  --service [NAME]     install and start a systemd unit; NAME is metrics (the default:
                       "isstreamer metrics", system telemetry) or collector ("isstreamer
                       serve", the dashboard on ${DASHBOARD_URL}). Repeatable. A user
                       unit, or a hardened system unit when run as root
  --system, --user     which kind of unit and paths (default: system as root, else user)
  --print-unit NAME    print the unit for NAME (metrics or collector) and exit
  --dry-run            print what would be done (and the units); change nothing
  --uninstall          remove what the last install made (it keeps a record): the venv, the
                       command link and the units; keep the config and the data
  --purge              with --uninstall: also remove the config, the spool and the
                       collector's database and key
  -y, --yes            non-interactive: no prompts; as root on Debian / Raspberry Pi OS,
                       apt-get may install python3-venv
  -h, --help           show this help

Re-running upgrades in place. As a user, the config is
\${XDG_CONFIG_HOME:-~/.config}/isstreamer/isstreamer.ini (mode 600) and the data (spool,
collector.db) is in \${XDG_DATA_HOME:-~/.local/share}/isstreamer; as root, the config is
/etc/isstreamer/isstreamer.ini and the services keep their data in /var/lib/isstreamer.
Environment: ISSTREAMER_SOURCE (default for --from), ISSTREAMER_PYTHON (default python3),
ISSTREAMER_SYSROOT (a stand-in for / for /etc and /var/lib; no systemctl is run then).
EOF
}

# ---------------------------------------------------------------------------- options

parse_args() {
    SOURCE="$ISSTREAMER_SOURCE"
    PREFIX=""
    BIN_DIR=""
    KEY_FROM_STDIN=0
    BUCKET_KEY=""
    BUCKET_NAME=""
    WANTED_SERVICES=()
    MODE=""
    PRINT_UNIT=""
    DRY_RUN=0
    UNINSTALL=0
    PURGE=0
    ASSUME_YES=0

    local opt value inline has_inline
    while [ "$#" -gt 0 ]; do
        opt="$1"
        shift
        has_inline=0
        inline=""
        case "$opt" in
            --*=*)
                inline="${opt#*=}"
                opt="${opt%%=*}"
                has_inline=1
                ;;
        esac
        case "$opt" in
            --from | --prefix | --bin-dir | --bucket-key | --bucket-name | --print-unit)
                if [ "$has_inline" = 1 ]; then
                    value="$inline"
                else
                    [ "$#" -gt 0 ] || die "$opt needs a value (see --help)"
                    value="$1"
                    shift
                fi
                [ -n "$value" ] || die "$opt needs a non-empty value"
                case "$opt" in
                    --from) SOURCE="$value" ;;
                    --prefix) PREFIX="$value" ;;
                    --bin-dir) BIN_DIR="$value" ;;
                    --bucket-key) BUCKET_KEY="$value" ;;
                    --bucket-name) BUCKET_NAME="$value" ;;
                    --print-unit)
                        check_service "$value"
                        PRINT_UNIT="$value"
                        ;;
                esac
                continue
                ;;
            --service)
                # The name is optional: a bare --service means metrics, as it always did.
                if [ "$has_inline" = 1 ]; then
                    value="$inline"
                elif [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
                    value="$1"
                    shift
                else
                    value="metrics"
                fi
                check_service "$value"
                add_wanted "$value"
                continue
                ;;
        esac
        [ "$has_inline" = 0 ] || die "$opt takes no value"
        case "$opt" in
            --access-key-stdin) KEY_FROM_STDIN=1 ;;
            --system) MODE="system" ;;
            --user) MODE="user" ;;
            --dry-run) DRY_RUN=1 ;;
            --uninstall) UNINSTALL=1 ;;
            --purge) PURGE=1 ;;
            -y | --yes) ASSUME_YES=1 ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option: $opt (see --help)" ;;
        esac
    done

    if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
        die "--purge only goes with --uninstall"
    fi
    if [ "$UNINSTALL" = 1 ]; then
        if [ "$KEY_FROM_STDIN" = 1 ] || [ -n "$BUCKET_KEY" ] || [ -n "$BUCKET_NAME" ] \
            || [ "${#WANTED_SERVICES[@]}" -gt 0 ] || [ -n "$PRINT_UNIT" ]; then
            die "--uninstall does not go with --access-key-stdin, --bucket-key, --bucket-name, --service or --print-unit"
        fi
    fi
    BUCKET_KEY="$(trim "$BUCKET_KEY")"
    BUCKET_NAME="$(trim "$BUCKET_NAME")"
    if [ -n "$BUCKET_KEY" ]; then
        check_ini_value "bucket key" "$BUCKET_KEY"
        # Checked again by `isstreamer config init` (isstreamer.model.bucket_key_problem, the
        # rule itself); here so that a typo stops the script before it installs anything.
        # tests/test_install.py holds the two to the same answers.
        [ "${#BUCKET_KEY}" -le 250 ] || die "the bucket key is longer than 250 characters"
        case "$BUCKET_KEY" in
            *[:\"\']*) die "the bucket key must not contain : \" or '" ;;
        esac
    fi
    if [ -n "$BUCKET_NAME" ]; then
        check_ini_value "bucket name" "$BUCKET_NAME"
    fi
}

check_service() {
    case "$1" in
        metrics | collector) ;;
        *) die "unknown service: $1 (the services are: $KNOWN_SERVICES)" ;;
    esac
}

add_wanted() {
    local name
    for name in "${WANTED_SERVICES[@]}"; do
        [ "$name" != "$1" ] || return 0
    done
    WANTED_SERVICES+=("$1")
}

trim() {
    local s="$1"
    s="${s#"${s%%[![:space:]]*}"}"
    s="${s%"${s##*[![:space:]]}"}"
    printf '%s' "$s"
}

check_ini_value() {
    case "$2" in
        *[[:cntrl:]]*) die "the $1 must be one line without control characters" ;;
    esac
}

absolute_path() {
    local path="$1"
    while [ "${path#./}" != "$path" ]; do path="${path#./}"; done
    case "$path" in
        /*) ;;
        . | "") path="$PWD" ;;
        *) path="$PWD/$path" ;;
    esac
    while [ "${#path}" -gt 1 ]; do
        case "$path" in
            */.) path="${path%/.}" ;;
            */) path="${path%/}" ;;
            *) break ;;
        esac
    done
    [ -n "$path" ] || path="/"
    printf '%s' "$path"
}

# ---------------------------------------------------------------------------- paths

is_root() {
    [ "$(id -u)" = 0 ]
}

is_system() {
    [ "$MODE" = system ]
}

set_paths() {
    if [ -z "$MODE" ]; then
        if is_root; then MODE="system"; else MODE="user"; fi
    fi
    # Only printing a unit, or a dry run, may look at the other kind of installation.
    if [ -z "$PRINT_UNIT" ] && [ "$DRY_RUN" = 0 ]; then
        if is_system && ! is_root; then
            die "a system installation needs root: run it with sudo, or leave out --system"
        fi
        if ! is_system && is_root; then
            die "as root the installation is a system one: leave out --user, or run as that user"
        fi
    fi
    [ -n "${HOME:-}" ] || die "HOME is not set; a user installation goes in your home directory"
    local config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
    local data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
    local state_home="${XDG_STATE_HOME:-$HOME/.local/state}"

    if is_system; then
        PREFIX="${PREFIX:-/opt/isstreamer}"
        BIN_DIR="${BIN_DIR:-/usr/local/bin}"
        UNIT_DIR="$ISSTREAMER_SYSROOT/etc/systemd/system"
        CONFIG_FILE="$ISSTREAMER_SYSROOT/etc/isstreamer/isstreamer.ini"
        # The units' StateDirectory=; with DynamicUser= systemd keeps it in /var/lib/private.
        DATA_DIR="$ISSTREAMER_SYSROOT/var/lib/isstreamer"
        RECORD="$ISSTREAMER_SYSROOT/etc/isstreamer/install-record"
        SYSTEMCTL=(systemctl)
        WANTED_BY="multi-user.target"
    else
        PREFIX="${PREFIX:-$data_home/isstreamer}"
        BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
        UNIT_DIR="$config_home/systemd/user"
        CONFIG_FILE="$config_home/isstreamer/isstreamer.ini"
        DATA_DIR="$data_home/isstreamer"
        RECORD="$state_home/isstreamer/install-record"
        SYSTEMCTL=(systemctl --user)
        WANTED_BY="default.target"
    fi
    if [ -f "$RECORD" ]; then
        read_record
    fi
    case "$PREFIX$BIN_DIR$SOURCE" in
        *$'\n'*) die "--prefix, --bin-dir and --from must be one line each" ;;
    esac
    PREFIX="$(absolute_path "$PREFIX")"
    BIN_DIR="$(absolute_path "$BIN_DIR")"
    derive_paths

    # pip understands "pkg" as a project name: a local path must not look like one.
    if [ -e "$SOURCE" ]; then
        SOURCE="$(absolute_path "$SOURCE")"
    else
        case "$SOURCE" in
            *://*) ;;
            ./* | ../* | /* | "~"* | *.whl | *.tar.gz | *.zip)
                die "--from $SOURCE: no such file or directory"
                ;;
        esac
    fi
}

derive_paths() {
    VENV="$PREFIX/venv"
    COMMAND="$VENV/bin/isstreamer"
    LINK="$BIN_DIR/isstreamer"
}

# ---------------------------------------------------------------------------- the record

# One "name=value" a line, read as data (never sourced). A re-run upgrades the installation
# where it is and --uninstall finds it; --prefix and --bin-dir, when given, win over it. Only
# --uninstall takes the other paths from it (they follow from the environment otherwise).
read_record() {
    local line name value
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            "#"* | "") continue ;;
        esac
        name="${line%%=*}"
        value="${line#*=}"
        case "$value" in
            /*) ;;
            *) continue ;;
        esac
        case "$name" in
            prefix) [ -n "$PREFIX_GIVEN" ] || PREFIX="$value" ;;
            bin_dir) [ -n "$BIN_DIR_GIVEN" ] || BIN_DIR="$value" ;;
        esac
        [ "$UNINSTALL" = 1 ] || continue
        case "$name" in
            config) CONFIG_FILE="$value" ;;
            data_dir) DATA_DIR="$value" ;;
            unit_dir) UNIT_DIR="$value" ;;
        esac
    done <"$RECORD"
}

write_record() {
    local dir tmp
    dir="$(dirname -- "$RECORD")"
    private_dirs "$dir"
    tmp="$(mktemp "$dir/.install-record.XXXXXX")" || die "cannot write in $dir"
    {
        say "# What install.sh installed here; bash install.sh --uninstall reads it."
        say "mode=$MODE"
        say "prefix=$PREFIX"
        say "bin_dir=$BIN_DIR"
        say "link=$LINK"
        say "config=$CONFIG_FILE"
        say "data_dir=$DATA_DIR"
        say "unit_dir=$UNIT_DIR"
        say "units=${INSTALLED_UNITS[*]}"
    } >"$tmp" || { rm -f -- "$tmp"; die "could not write $RECORD"; }
    mv -f -- "$tmp" "$RECORD" || { rm -f -- "$tmp"; die "could not write $RECORD"; }
}

# ---------------------------------------------------------------------------- python

is_debian() {
    [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}

has_tty() {
    (exec 3</dev/tty) 2>/dev/null
}

# Ask a yes/no question on the terminal; --yes answers yes, no terminal answers no.
confirm() {
    local answer=""
    [ "$ASSUME_YES" = 1 ] && return 0
    has_tty || return 1
    printf '%s [y/N] ' "$1" >/dev/tty
    IFS= read -r answer </dev/tty || return 1
    case "$answer" in
        y | Y | yes | Yes | YES) return 0 ;;
    esac
    return 1
}

apt_install() {
    local package="$1"
    if is_debian && is_root && [ "$DRY_RUN" = 0 ] \
        && confirm "Install $package with apt-get?"; then
        say "Installing $package with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -q \
            || die "apt-get update failed; fix the network or apt sources and re-run"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" \
            || die "apt-get install $package failed"
        return 0
    fi
    if is_debian; then
        die "$2. Install it with: sudo apt-get install $package   (then re-run this script)"
    fi
    die "$2. Install it with your system's package manager, then re-run this script"
}

check_python() {
    local version package
    if ! command -v "$ISSTREAMER_PYTHON" >/dev/null 2>&1; then
        apt_install python3-venv "$ISSTREAMER_PYTHON was not found; isstreamer needs Python >= $MIN_PYTHON"
        command -v "$ISSTREAMER_PYTHON" >/dev/null 2>&1 \
            || die "$ISSTREAMER_PYTHON is still not found; set ISSTREAMER_PYTHON to a Python >= $MIN_PYTHON"
    fi
    version="$("$ISSTREAMER_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
        || die "$ISSTREAMER_PYTHON does not run"
    if ! "$ISSTREAMER_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
        die "isstreamer needs Python >= $MIN_PYTHON, and $ISSTREAMER_PYTHON is $version. Upgrade the OS (Raspberry Pi OS 11 or later has it), or set ISSTREAMER_PYTHON to a newer python"
    fi
    if ! "$ISSTREAMER_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        package="python3-venv"
        [ "$ISSTREAMER_PYTHON" = python3 ] || package="python$version-venv"
        apt_install "$package" "the venv module of $ISSTREAMER_PYTHON ($version) is missing"
        "$ISSTREAMER_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 \
            || die "the venv module of $ISSTREAMER_PYTHON is still missing after installing $package"
    fi
    PYTHON_VERSION="$version"
}

# ---------------------------------------------------------------------------- install

# pip from outside the venv when the system has one that installs into another environment
# (--python, pip >= 22.3; Debian 12 and Raspberry Pi OS 12 ship 23.0): the venv is then made
# without pip, since ensurepip costs seconds here and most of a minute on a Pi Zero. Otherwise
# the venv gets its own pip, as before.
outer_pip_works() {
    "$ISSTREAMER_PYTHON" -I -c '
import sys
import pip
major, minor = (int(part) for part in pip.__version__.split(".")[:2])
sys.exit((major, minor) < (22, 3))' >/dev/null 2>&1
}

# How a new venv gets its packages, for the messages.
venv_pip_note() {
    if outer_pip_works; then
        printf "installed into by %s's pip" "$ISSTREAMER_PYTHON"
    else
        printf 'with its own pip'
    fi
}

venv_has_pip() {
    "$VENV/bin/python" -I -m pip --version >/dev/null 2>&1
}

venv_works() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -I -c '' >/dev/null 2>&1 \
        && { venv_has_pip || outer_pip_works; }
}

# The pip that installs into the venv: its own, or the system's aimed at it.
venv_pip() {
    if venv_has_pip; then
        "$VENV/bin/python" -I -m pip "$@"
    else
        "$ISSTREAMER_PYTHON" -I -m pip --python "$VENV/bin/python" "$@"
    fi
}

# A venv this run made is removed again unless the install completed: a failed first install
# leaves nothing behind (the EXIT trap), a failed upgrade keeps the venv that worked before.
HALF_MADE_VENV=""
HALF_MADE_PREFIX=""

remove_half_made() {
    if [ -n "$HALF_MADE_VENV" ] && [ -f "$HALF_MADE_VENV/pyvenv.cfg" ]; then
        rm -rf -- "$HALF_MADE_VENV"
        printf 'isstreamer install: removed the unfinished virtual environment %s\n' \
            "$HALF_MADE_VENV" >&2
    fi
    if [ -n "$HALF_MADE_PREFIX" ]; then
        rmdir -- "$HALF_MADE_PREFIX" 2>/dev/null || true
    fi
    HALF_MADE_VENV=""
    HALF_MADE_PREFIX=""
}

ensure_venv() {
    if [ -e "$VENV" ]; then
        [ -f "$VENV/pyvenv.cfg" ] \
            || die "$VENV exists and is not a virtual environment; move it away or choose another --prefix"
        if venv_works; then
            say "Upgrading the existing virtual environment $VENV"
            return 0
        fi
        say "Recreating $VENV: its Python no longer runs (after an OS upgrade?)"
        rm -rf -- "$VENV"
    fi
    local without_pip=()
    outer_pip_works && without_pip=(--without-pip)
    say "Creating a virtual environment in $VENV (Python $PYTHON_VERSION, $(venv_pip_note))"
    [ -d "$PREFIX" ] || HALF_MADE_PREFIX="$PREFIX"
    mkdir -p -- "$PREFIX" \
        || die "cannot create $PREFIX; choose a --prefix you can write to, or run as root"
    HALF_MADE_VENV="$VENV"
    "$ISSTREAMER_PYTHON" -m venv "${without_pip[@]}" -- "$VENV" \
        || die "could not create the virtual environment $VENV (on Debian / Raspberry Pi OS: sudo apt-get install python3-venv)"
    venv_works || die "the new virtual environment $VENV has no working pip"
}

pip_install() {
    case "$SOURCE" in
        git+*)
            command -v git >/dev/null 2>&1 \
                || die "--from $SOURCE needs git; install it (sudo apt-get install git) and re-run"
            ;;
    esac
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/isstreamer-pip.XXXXXX")" || die "cannot create a temporary file"
    say "Installing $SOURCE with pip (into $VENV only; a minute or two on a Pi)"
    # PIP_USER=0: a "user = true" pip.conf would make pip refuse to install into a venv.
    # All of pip's output goes to the log: shown only when it fails.
    if ! PIP_USER=0 venv_pip install --upgrade --no-input \
        --disable-pip-version-check -- "$SOURCE" >"$log" 2>&1; then
        pip_failed "$log"
    fi
    rm -f -- "$log"
    [ -x "$COMMAND" ] || die "pip installed $SOURCE but $COMMAND is missing; is it the isstreamer-agent package?"
}

pip_failed() {
    local log="$1"
    printf 'isstreamer install: pip could not install %s; its last lines:\n' "$SOURCE" >&2
    tail -n "$PIP_TAIL_LINES" -- "$log" | sed 's/^/    /' >&2
    if [ "$SOURCE" = "$DEFAULT_SOURCE" ] \
        && grep -qE 'No matching distribution|from versions: none' -- "$log"; then
        printf 'isstreamer install: %s is not on the package index (yet): build a wheel in a checkout (python3 -m build), copy it here and run: bash install.sh --from isstreamer_agent-VERSION-py3-none-any.whl\n' \
            "$DEFAULT_SOURCE" >&2
    fi
    if [ -n "$HALF_MADE_VENV" ]; then
        remove_half_made
        die "nothing was installed (pip's whole log: $log)"
    fi
    die "the installation in $VENV was left as it was (pip's whole log: $log)"
}

link_command() {
    mkdir -p -- "$BIN_DIR" \
        || die "cannot create $BIN_DIR; choose a --bin-dir you can write to, or run as root"
    if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
        die "$LINK exists and is not a link made by this installer; remove it or choose another --bin-dir"
    fi
    if [ -L "$LINK" ] && [ "$(readlink -- "$LINK")" != "$COMMAND" ]; then
        warn "replacing $LINK, which pointed to $(readlink -- "$LINK")"
    fi
    ln -sfn -- "$COMMAND" "$LINK" || die "could not link $LINK"
    say "Linked $LINK -> $COMMAND"
}

# Private from the start: the spool and the collector's readings and key are nobody else's.
# The collector's database is made here, empty and 0600, because SQLite creates a new one
# (and its -wal and -shm files, which copy its mode) with the umask's 0644. A system
# install's data directory belongs to its units (StateDirectoryMode=0700, UMask=0077).
prepare_private_dirs() {
    local dir file
    private_dirs "$(dirname -- "$CONFIG_FILE")" "$(dirname -- "$RECORD")"
    is_system && return 0
    private_dirs "$DATA_DIR" "$DATA_DIR/spool"
    for file in $COLLECTOR_FILES; do
        [ ! -e "$DATA_DIR/$file" ] || chmod 600 -- "$DATA_DIR/$file"
    done
    if [ ! -e "$DATA_DIR/collector.db" ]; then
        (umask 077 && : >"$DATA_DIR/collector.db") || die "cannot create $DATA_DIR/collector.db"
    fi
}

# Each directory 0700, made or already there; missing parents are made 0700 too.
private_dirs() {
    (umask 077 && mkdir -p -- "$@") || die "cannot create $*"
    chmod 700 -- "$@" || die "cannot make $* private (chmod 700)"
}

# ---------------------------------------------------------------------------- config

config_has_key() {
    [ -f "$CONFIG_FILE" ] && awk '
        /^[[:space:]]*\[/ {
            inside = ($0 ~ /^[[:space:]]*\[isstreamer\.client_config\][[:space:]]*$/)
            next
        }
        inside && tolower($0) ~ /^access_key[[:space:]]*[=:][[:space:]]*[^[:space:]]/ { found = 1 }
        END { exit !found }
    ' "$CONFIG_FILE" 2>/dev/null
}

check_access_key() {
    [ -n "$ACCESS_KEY" ] || return 0
    case "$ACCESS_KEY" in
        *[[:space:][:cntrl:]]*) die "the access key must be one word, without spaces or control characters" ;;
    esac
}

read_access_key() {
    ACCESS_KEY=""
    if [ "$KEY_FROM_STDIN" = 1 ]; then
        if [ -t 0 ]; then
            printf 'Initial State access key (input hidden): ' >&2
            IFS= read -rs ACCESS_KEY || true
            printf '\n' >&2
        else
            IFS= read -r ACCESS_KEY || true
        fi
        ACCESS_KEY="$(trim "${ACCESS_KEY%$'\r'}")"
        [ -n "$ACCESS_KEY" ] \
            || die "--access-key-stdin: no access key on standard input. With curl ... | bash, standard input is the script itself: download install.sh and run bash install.sh --access-key-stdin < keyfile, or leave the option out to be prompted"
    elif [ "$ASSUME_YES" = 0 ] && [ "$DRY_RUN" = 0 ] && ! config_has_key && has_tty; then
        printf 'Initial State access key (input hidden; Enter to skip): ' >/dev/tty
        IFS= read -rs ACCESS_KEY </dev/tty || true
        printf '\n' >/dev/tty
        ACCESS_KEY="$(trim "$ACCESS_KEY")"
    fi
    check_access_key
}

# `isstreamer config init` writes the settings: it updates the keys in place and keeps every
# other line (comments too), creates the file 0600 and replaces it atomically, so the key never
# sits in a readable file. The key goes through standard input, never the command line.
write_config() {
    CONFIG_STATE="kept"
    if [ -n "$ACCESS_KEY$BUCKET_KEY$BUCKET_NAME" ]; then
        local args=(-q config init --access-key-stdin --path "$CONFIG_FILE")
        [ -z "$BUCKET_KEY" ] || args+=(--bucket-key "$BUCKET_KEY")
        [ -z "$BUCKET_NAME" ] || args+=(--bucket-name "$BUCKET_NAME")
        printf '%s\n' "$ACCESS_KEY" | "$COMMAND" "${args[@]}" \
            || die "could not write the config $CONFIG_FILE"
        say "Saved $(config_items) in $CONFIG_FILE (mode 600)"
        CONFIG_STATE="written"
    elif is_system && [ ! -e "$CONFIG_FILE" ]; then
        # The system units load this file as a credential (LoadCredential=), which must exist;
        # without a key in it, `isstreamer metrics` streams to the local collector.
        (umask 077 && printf '%s\n' \
            "# isstreamer settings, read by the isstreamer system services." \
            "# Write them with: isstreamer config init --path $CONFIG_FILE" \
            >"$CONFIG_FILE") || die "could not create $CONFIG_FILE"
        say "Created $CONFIG_FILE (mode 600, no access key yet)"
        CONFIG_STATE="created"
    fi
}

# ISStreamer's ~/isstreamer.ini is read before the user config dir: say so, or the new
# settings would seem to be ignored.
warn_shadowing_config() {
    if ! is_system && [ -f "$HOME/isstreamer.ini" ] && [ "$HOME/isstreamer.ini" != "$CONFIG_FILE" ]; then
        warn "$HOME/isstreamer.ini (ISStreamer's config file) exists, and isstreamer reads it instead of $CONFIG_FILE: move its settings into $CONFIG_FILE and delete it"
    fi
}

config_items() {
    local items=""
    [ -z "$ACCESS_KEY" ] || items="the access key"
    [ -z "$BUCKET_KEY" ] || items="${items:+$items, }the bucket key"
    [ -z "$BUCKET_NAME" ] || items="${items:+$items, }the bucket name"
    printf '%s' "$items"
}

# ---------------------------------------------------------------------------- units

unit_name() {
    printf 'isstreamer-%s.service' "$1"
}

# Quote one word for ExecStart=: "%" and "$" are special to systemd, and so are spaces.
systemd_word() {
    local s="$1"
    s="${s//%/%%}"
    s="${s//\$/\$\$}"
    if [[ "$s" =~ [[:space:]\"\'\\] ]]; then
        s="${s//\\/\\\\}"
        s="${s//\"/\\\"}"
        s="\"$s\""
    fi
    printf '%s' "$s"
}

# A value for Environment= or a path setting: "%" is a specifier, the rest is quoted.
systemd_env() {
    local s="$1=$2"
    s="${s//%/%%}"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf 'Environment="%s"\n' "$s"
}

render_unit() {
    local name="$1" description command service_type
    case "$name" in
        metrics)
            description="isstreamer: system telemetry (isstreamer metrics)"
            command="metrics"
            ;;
        collector)
            description="isstreamer: local collector and dashboard (isstreamer serve)"
            command="serve"
            ;;
    esac
    say "[Unit]"
    say "Description=$description"
    if is_system; then
        if [ "$name" = metrics ]; then
            # After the collector, when there is one: without an access key, metrics streams
            # to it instead of starting one of its own.
            say "After=network-online.target $(unit_name collector)"
            say "Wants=network-online.target"
        else
            say "After=network.target"
        fi
    elif [ "$name" = metrics ]; then
        # A user manager has no network-online.target; it only orders the two units.
        say "After=$(unit_name collector)"
    fi
    if [ "$name" = collector ]; then
        # serve sends READY=1 once it listens, so the metrics unit (ordered after it) never
        # finds the port still closed at boot and starts a collector of its own.
        service_type="Type=notify"
    else
        # SIGHUP makes metrics re-read its configuration (systemctl reload).
        service_type="Type=exec
ExecReload=/bin/kill -HUP \$MAINPID"
    fi
    cat <<EOF

[Service]
$service_type
ExecStart=$(systemd_word "$COMMAND") $command
Restart=on-failure
RestartSec=15
# Exit 2: the configuration or the command line cannot work; restarting would not help.
RestartPreventExitStatus=2
Environment=PYTHONUNBUFFERED=1
# Log lines that start with <3>..<7> carry their journald priority.
SyslogLevelPrefix=yes
UMask=0077
EOF
    if is_system; then
        render_system_service "$name"
    else
        render_user_service
    fi
    cat <<EOF

[Install]
WantedBy=$WANTED_BY
EOF
}

# The agent finds its paths as it always does (platformdirs): XDG_DATA_HOME=%S makes its
# data directory /var/lib/isstreamer, the units' StateDirectory. The config stays root's
# (0600 in /etc/isstreamer) and reaches the unprivileged service as a credential.
render_system_service() {
    local name="$1"
    cat <<EOF
# One dynamic user for both units (the same name shares the uid): metrics reads the key the
# collector keeps beside its database.
User=isstreamer
DynamicUser=yes
StateDirectory=isstreamer
StateDirectoryMode=0700
Environment=XDG_DATA_HOME=%S
EOF
    if [ "$name" = metrics ]; then
        printf 'LoadCredential=isstreamer.ini:%s\n' "${CONFIG_FILE//%/%%}"
        # The credentials directory, spelled out: %d needs systemd 248, Raspberry Pi OS 11 has 247.
        say "Environment=ISSTREAMER_CONFIG=/run/credentials/%n/isstreamer.ini"
    fi
    cat <<EOF
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictSUIDSGID=yes
ProtectClock=yes
ProtectHostname=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
DevicePolicy=closed
KeyringMode=private
RemoveIPC=yes
EOF
    if [ "$name" = collector ]; then
        # The collector reads no system figures; metrics needs /proc for them (and to count
        # processes).
        say "ProtectProc=invisible"
        say "ProcSubset=pid"
    fi
    render_syscall_limits
}

# Seccomp filters: they need no privileges (only NoNewPrivileges), so user units get them too.
render_syscall_limits() {
    cat <<EOF
NoNewPrivileges=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
EOF
}

# A user manager cannot set up namespaces without privileges (a unit asking for them fails
# where unprivileged user namespaces are off): user units get the seccomp filters only.
# The service must find the config and data where this installer put them.
render_user_service() {
    render_syscall_limits
    if [ -n "${XDG_CONFIG_HOME:-}" ]; then
        systemd_env XDG_CONFIG_HOME "$XDG_CONFIG_HOME"
    fi
    if [ -n "${XDG_DATA_HOME:-}" ]; then
        systemd_env XDG_DATA_HOME "$XDG_DATA_HOME"
    fi
}

# True when the unit file is ours: it runs this prefix's command.
unit_is_ours() {
    [ -f "$1" ] && grep -qF -- "ExecStart=$(systemd_word "$COMMAND") " "$1"
}

systemd_reachable() {
    [ -z "$ISSTREAMER_SYSROOT" ] || return 1
    command -v systemctl >/dev/null 2>&1 || return 1
    if is_system; then
        [ -d /run/systemd/system ]
    else
        "${SYSTEMCTL[@]}" show-environment >/dev/null 2>&1
    fi
}

status_hint() {
    printf '%s status %s' "${SYSTEMCTL[*]}" "$*"
}

journal_hint() {
    local name options=""
    for name in "$@"; do options="$options -u ${name%.service}"; done
    if is_system; then
        printf 'journalctl%s -f' "$options"
    else
        printf 'journalctl --user%s -f' "$options"
    fi
}

write_unit() {
    local file tmp
    file="$UNIT_DIR/$(unit_name "$1")"
    if [ -e "$file" ] && ! unit_is_ours "$file"; then
        die "$file exists and runs another isstreamer; remove it, or uninstall that one first"
    fi
    mkdir -p -- "$UNIT_DIR" 2>/dev/null || die "cannot create $UNIT_DIR"
    tmp="$(mktemp "$UNIT_DIR/.$(unit_name "$1").XXXXXX")" || die "cannot write in $UNIT_DIR"
    if ! { render_unit "$1" >"$tmp" && chmod 644 "$tmp" && mv -f -- "$tmp" "$file"; }; then
        rm -f -- "$tmp"
        die "could not write $file"
    fi
    say "Wrote $file"
}

# The wanted services, and those a previous run installed: each unit is written anew, so an
# upgrade also brings the new unit, and (re)started, so it runs the new code.
install_units() {
    local name unit units=()
    INSTALLED_UNITS=()
    SERVICE_STATE="none"
    for name in $KNOWN_SERVICES; do
        if unit_is_ours "$UNIT_DIR/$(unit_name "$name")"; then
            add_wanted "$name"
        fi
    done
    if unit_is_ours "$UNIT_DIR/$LEGACY_UNIT"; then
        add_wanted metrics
    fi
    [ "${#WANTED_SERVICES[@]}" -gt 0 ] || return 0
    for name in "${WANTED_SERVICES[@]}"; do
        write_unit "$name"
        units+=("$(unit_name "$name")")
    done
    INSTALLED_UNITS=("${units[@]}")
    SERVICE_STATE="written"
    if ! systemd_reachable; then
        if [ -n "$ISSTREAMER_SYSROOT" ]; then
            say "Not starting the units: ISSTREAMER_SYSROOT is set"
        else
            warn "systemd is not reachable from here (no running systemd or no user session), so the services were not started"
        fi
        remove_legacy_unit
        return 0
    fi
    remove_legacy_unit
    if "${SYSTEMCTL[@]}" daemon-reload && "${SYSTEMCTL[@]}" enable --quiet "${units[@]}" \
        && "${SYSTEMCTL[@]}" restart "${units[@]}"; then
        SERVICE_STATE="running"
        for unit in "${units[@]}"; do say "Started $unit"; done
    else
        warn "the units are installed but systemctl could not start them; see: $(journal_hint "${units[@]}")"
    fi
}

# An upgrade from a version that called the metrics unit isstreamer.service.
remove_legacy_unit() {
    unit_is_ours "$UNIT_DIR/$LEGACY_UNIT" || return 0
    remove_unit "$UNIT_DIR/$LEGACY_UNIT"
}

# ---------------------------------------------------------------------------- steps

dry_run_install() {
    local name
    say "Dry run: nothing will be changed."
    if "$ISSTREAMER_PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' \
        >/dev/null 2>&1; then
        say "Found $ISSTREAMER_PYTHON >= $MIN_PYTHON with its venv module"
    else
        say "Would need $ISSTREAMER_PYTHON >= $MIN_PYTHON and its venv module (python3-venv on Debian / Raspberry Pi OS)"
    fi
    if [ -d "$VENV" ]; then
        say "Would upgrade the virtual environment $VENV"
    else
        say "Would create a virtual environment in $VENV with $ISSTREAMER_PYTHON ($(venv_pip_note))"
    fi
    say "Would run (into $VENV): pip install --upgrade $SOURCE"
    say "Would link $LINK -> $COMMAND"
    if [ -n "$ACCESS_KEY$BUCKET_KEY$BUCKET_NAME" ]; then
        say "Would save $(config_items) in $CONFIG_FILE (mode 600)"
    fi
    say "Would record the installation in $RECORD"
    for name in "${WANTED_SERVICES[@]}"; do
        say "Would write $UNIT_DIR/$(unit_name "$name") and start it:"
        say ""
        render_unit "$name"
        say ""
    done
}

next_steps() {
    local steps=() units=("${INSTALLED_UNITS[@]}") sudo="" collector=0 unit
    is_root && sudo="sudo "
    for unit in "${units[@]}"; do
        [ "$unit" != "$(unit_name collector)" ] || collector=1
    done
    case ":$PATH:" in
        *":$BIN_DIR:"*) steps+=("Check the command: isstreamer --version") ;;
        *) steps+=("$BIN_DIR is not on your PATH: add it (e.g. in ~/.profile), or run $LINK --version") ;;
    esac
    if config_has_key && is_system; then
        steps+=("Config: $CONFIG_FILE holds the access key ($CONFIG_STATE; mode 600)")
    elif config_has_key; then
        steps+=("Config: $CONFIG_FILE holds your access key ($CONFIG_STATE; mode 600); isstreamer config shows the settings")
    else
        steps+=("Config: no access key yet, so events go to the local collector. To stream to Initial State: isstreamer config init --path $CONFIG_FILE (it asks for the key), or re-run with --access-key-stdin")
    fi
    if is_system; then
        steps+=("As root, the isstreamer command reads that config with: ISSTREAMER_CONFIG=$CONFIG_FILE isstreamer config")
    fi
    if [ "$collector" = 1 ]; then
        steps+=("Dashboard: $DASHBOARD_URL (the collector service); the key its clients send: ${sudo}cat $DATA_DIR/collector.key")
    elif ! config_has_key; then
        steps+=("Dashboard: $DASHBOARD_URL while isstreamer metrics (or its service) runs")
    else
        steps+=("Dashboard: your Initial State account; a local one: isstreamer serve, then $DASHBOARD_URL")
    fi
    case "$SERVICE_STATE" in
        running) steps+=("Services: $(status_hint "${units[@]}"); logs: $(journal_hint "${units[@]}")") ;;
        written) steps+=("Services: start them once systemd runs: ${SYSTEMCTL[*]} daemon-reload && ${SYSTEMCTL[*]} enable --now ${units[*]}; then: $(status_hint "${units[@]}")") ;;
        *) steps+=("Services: none installed; re-run with --service metrics (telemetry at boot) and/or --service collector (the dashboard at boot)") ;;
    esac
    if [ "$SERVICE_STATE" != none ] && ! is_system; then
        steps+=("Keep the user services running after you log out: loginctl enable-linger $(id -un)")
    fi
    say ""
    say "Next steps:"
    local i=1 step
    for step in "${steps[@]}"; do
        say "  $i. $step"
        i=$((i + 1))
    done
}

do_install() {
    read_access_key
    if [ "$DRY_RUN" = 1 ]; then
        dry_run_install
        return 0
    fi
    check_python
    ensure_venv
    pip_install
    HALF_MADE_VENV=""
    HALF_MADE_PREFIX=""
    link_command
    prepare_private_dirs
    write_config
    warn_shadowing_config
    install_units
    write_record
    say "Installed: $("$COMMAND" --version 2>&1 || printf 'isstreamer (the command did not run: %s --version)' "$COMMAND")"
    next_steps
}

# Remove only what this installer made, checking each piece before it goes.
do_uninstall() {
    ACT="Removed"
    local found=0 name file
    if [ "$DRY_RUN" = 1 ]; then
        say "Dry run: nothing will be changed."
        ACT="Would remove"
    fi
    [ ! -f "$RECORD" ] || found=1
    for name in $KNOWN_SERVICES; do
        file="$UNIT_DIR/$(unit_name "$name")"
        if unit_is_ours "$file"; then
            found=1
            remove_unit "$file"
        elif [ -e "$file" ]; then
            warn "leaving $file: it runs another installation, not $COMMAND"
        fi
    done
    if unit_is_ours "$UNIT_DIR/$LEGACY_UNIT"; then
        found=1
        remove_unit "$UNIT_DIR/$LEGACY_UNIT"
    fi
    if [ "$DRY_RUN" = 0 ] && [ "$found" = 1 ] && systemd_reachable; then
        "${SYSTEMCTL[@]}" daemon-reload || true
    fi
    if [ -L "$LINK" ] && [ "$(readlink -- "$LINK")" = "$COMMAND" ]; then
        found=1
        [ "$DRY_RUN" = 1 ] || rm -f -- "$LINK"
        say "$ACT $LINK"
    elif [ -e "$LINK" ] || [ -L "$LINK" ]; then
        warn "leaving $LINK: it does not point to $COMMAND"
    fi
    if [ -d "$VENV" ]; then
        [ -f "$VENV/pyvenv.cfg" ] || die "$VENV is not a virtual environment; not removing it"
        found=1
        [ "$DRY_RUN" = 1 ] || rm -rf -- "$VENV"
        say "$ACT $VENV"
    fi
    if [ "$PURGE" = 1 ]; then
        purge_data && found=1
    fi
    if [ -f "$RECORD" ]; then
        [ "$DRY_RUN" = 1 ] || rm -f -- "$RECORD"
    fi
    if [ "$DRY_RUN" = 0 ]; then
        rmdir -- "$PREFIX" "$(dirname -- "$RECORD")" 2>/dev/null || true
    fi
    [ "$found" = 1 ] \
        || die "found no installation to remove: no record in $RECORD and nothing in $VENV (give the --prefix and --bin-dir it was installed with)"
    if [ "$PURGE" = 0 ]; then
        say "Kept your config ($CONFIG_FILE) and data ($DATA_DIR); --uninstall --purge removes them"
    fi
}

remove_unit() {
    local file="$1" unit
    unit="$(basename -- "$file")"
    if [ "$DRY_RUN" = 0 ]; then
        if systemd_reachable; then
            "${SYSTEMCTL[@]}" disable --now --quiet "$unit" \
                || warn "systemctl could not stop or disable $unit"
        fi
        rm -f -- "$file"
    fi
    say "${ACT:-Removed} $file"
}

# The config, the spool and the collector's database and key; true when any was there.
purge_data() {
    local nothing=1 path paths=("$CONFIG_FILE")
    if is_system; then
        # DynamicUser= keeps the real directory in /var/lib/private, /var/lib/isstreamer links it.
        paths+=("$DATA_DIR" "$(dirname -- "$DATA_DIR")/private/$(basename -- "$DATA_DIR")")
    else
        paths+=("$DATA_DIR/spool")
        for path in $COLLECTOR_FILES; do paths+=("$DATA_DIR/$path"); done
    fi
    for path in "${paths[@]}"; do
        if [ -e "$path" ] || [ -L "$path" ]; then
            nothing=0
            [ "$DRY_RUN" = 1 ] || rm -rf -- "$path"
            say "$ACT $path"
        fi
    done
    if [ "$DRY_RUN" = 0 ]; then
        rmdir -- "$(dirname -- "$CONFIG_FILE")" 2>/dev/null || true
        rmdir -- "$DATA_DIR" 2>/dev/null || true
        if [ -d "$DATA_DIR" ]; then
            warn "left $DATA_DIR: it holds files this installer did not make"
        fi
    fi
    return "$nothing"
}

print_unit() {
    render_unit "$PRINT_UNIT"
}

main() {
    trap 'on_unexpected_error "$?" "$LINENO"' ERR
    trap remove_half_made EXIT
    set -o errtrace
    PREFIX_GIVEN=""
    BIN_DIR_GIVEN=""
    parse_args "$@"
    PREFIX_GIVEN="$PREFIX"
    BIN_DIR_GIVEN="$BIN_DIR"
    set_paths
    if [ -n "$PRINT_UNIT" ]; then
        print_unit
    elif [ "$UNINSTALL" = 1 ]; then
        do_uninstall
    else
        do_install
    fi
}

main "$@"
