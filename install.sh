#!/usr/bin/env bash
# install.sh - install the isstreamer agent (PyPI: isstreamer-agent) on a Raspberry Pi or any
# Linux box, in its own virtual environment.
#
# One-liner: set ISSTREAMER_INSTALL_URL to the raw URL of install.sh in the project's
# repository (the "raw" link of the file on the main branch), then
#
#     curl -fsSL "$ISSTREAMER_INSTALL_URL" | bash
#     curl -fsSL "$ISSTREAMER_INSTALL_URL" | bash -s -- --service --yes
#
# or download it and run `bash install.sh --help` to see the options first.
#
# What it does, and nothing else:
#   - checks for python3 >= 3.9 and its venv module (on Debian / Raspberry Pi OS it names the
#     apt package, or installs it with apt-get when run as root with --yes);
#   - creates (or upgrades in place) a venv in PREFIX/venv and pip installs $ISSTREAMER_SOURCE
#     into it: never sudo pip, never the system Python's site-packages (PEP 668-safe);
#   - links BIN_DIR/isstreamer to the venv's command;
#   - writes the access key (and bucket key/name) to the ini file the library reads, mode 0600;
#     it never asks for your account e-mail or password;
#   - with --service, installs a systemd unit running `isstreamer metrics`.
# Re-running it upgrades in place. --uninstall undoes it and keeps your config and spool
# unless --purge is given.
#
# Environment: ISSTREAMER_SOURCE (what to pip install when --from is not given) and
# ISSTREAMER_PYTHON (the interpreter that creates the venv, default python3).
#
# The whole script is made of functions called on its last line, so a truncated download
# runs nothing.

set -euo pipefail

ISSTREAMER_SOURCE="${ISSTREAMER_SOURCE:-isstreamer-agent}"
ISSTREAMER_PYTHON="${ISSTREAMER_PYTHON:-python3}"

readonly UNIT_NAME="isstreamer.service"
readonly MIN_PYTHON="3.9"

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
  --from SRC           what to pip install: a local checkout, an sdist, a wheel or a git URL
                       (git+https://...). Default: ${ISSTREAMER_SOURCE}
  --prefix DIR         the venv goes in DIR/venv. Default: ~/.local/share/isstreamer,
                       or /opt/isstreamer as root
  --bin-dir DIR        where the isstreamer command is linked. Default: ~/.local/bin,
                       or /usr/local/bin as root
  --access-key-stdin   read the Initial State access key from standard input. Without it,
                       a hidden prompt asks for it when a terminal is attached (not with --yes)
  --bucket-key KEY     bucket key to write in the config
  --bucket-name NAME   bucket name to write in the config (default_bucket)
  --service            install a systemd unit running "isstreamer metrics": a user unit,
                       or a system unit when run as root
  --dry-run            print what would be done (and the unit); change nothing
  --uninstall          remove the venv, the command link and the unit; keep the config
                       and the spool
  --purge              with --uninstall: also remove the config and the spool
  -y, --yes            non-interactive: no prompts; as root on Debian / Raspberry Pi OS,
                       apt-get may install python3-venv
  -h, --help           show this help

Re-running upgrades in place. The config is
\${XDG_CONFIG_HOME:-~/.config}/isstreamer/isstreamer.ini (mode 600); the spool is
\${XDG_DATA_HOME:-~/.local/share}/isstreamer/spool.
Environment: ISSTREAMER_SOURCE (default for --from), ISSTREAMER_PYTHON (default python3).
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
    WANT_SERVICE=0
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
            --from | --prefix | --bin-dir | --bucket-key | --bucket-name)
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
                esac
                continue
                ;;
        esac
        [ "$has_inline" = 0 ] || die "$opt takes no value"
        case "$opt" in
            --access-key-stdin) KEY_FROM_STDIN=1 ;;
            --service) WANT_SERVICE=1 ;;
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
            || [ "$WANT_SERVICE" = 1 ]; then
            die "--uninstall does not go with --access-key-stdin, --bucket-key, --bucket-name or --service"
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
    case "$path" in
        /*) ;;
        *) path="$PWD/$path" ;;
    esac
    while [ "${#path}" -gt 1 ] && [ "${path%/}" != "$path" ]; do
        path="${path%/}"
    done
    printf '%s' "$path"
}

# ---------------------------------------------------------------------------- paths

is_root() {
    [ "$(id -u)" = 0 ]
}

set_paths() {
    [ -n "${HOME:-}" ] || die "HOME is not set; the config goes in your home directory"
    local config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
    local data_home="${XDG_DATA_HOME:-$HOME/.local/share}"

    if is_root; then
        PREFIX="${PREFIX:-/opt/isstreamer}"
        BIN_DIR="${BIN_DIR:-/usr/local/bin}"
        UNIT_DIR="/etc/systemd/system"
        SYSTEMCTL=(systemctl)
        WANTED_BY="multi-user.target"
    else
        PREFIX="${PREFIX:-$data_home/isstreamer}"
        BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
        UNIT_DIR="$config_home/systemd/user"
        SYSTEMCTL=(systemctl --user)
        WANTED_BY="default.target"
    fi
    PREFIX="$(absolute_path "$PREFIX")"
    BIN_DIR="$(absolute_path "$BIN_DIR")"
    VENV="$PREFIX/venv"
    COMMAND="$VENV/bin/isstreamer"
    LINK="$BIN_DIR/isstreamer"
    UNIT_FILE="$UNIT_DIR/$UNIT_NAME"
    CONFIG_FILE="$config_home/isstreamer/isstreamer.ini"
    DATA_DIR="$data_home/isstreamer"
    SPOOL_DIR="$DATA_DIR/spool"

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

venv_works() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -I -m pip --version >/dev/null 2>&1
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
    say "Creating a virtual environment in $VENV (Python $PYTHON_VERSION)"
    mkdir -p -- "$PREFIX" \
        || die "cannot create $PREFIX; choose a --prefix you can write to, or run as root"
    "$ISSTREAMER_PYTHON" -m venv -- "$VENV" \
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
    say "Installing $SOURCE with pip (into $VENV only)"
    # PIP_USER=0: a "user = true" pip.conf would make pip refuse to install into a venv.
    PIP_USER=0 "$VENV/bin/python" -I -m pip install --upgrade -- "$SOURCE" \
        || die "pip could not install $SOURCE. If building psutil failed, install a compiler and headers (sudo apt-get install gcc python3-dev) and re-run"
    [ -x "$COMMAND" ] || die "pip installed $SOURCE but $COMMAND is missing; is it the isstreamer-agent package?"
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
    [ -n "$ACCESS_KEY$BUCKET_KEY$BUCKET_NAME" ] || return 0
    local args=(-q config init --access-key-stdin --path "$CONFIG_FILE")
    [ -z "$BUCKET_KEY" ] || args+=(--bucket-key "$BUCKET_KEY")
    [ -z "$BUCKET_NAME" ] || args+=(--bucket-name "$BUCKET_NAME")
    printf '%s\n' "$ACCESS_KEY" | "$COMMAND" "${args[@]}" \
        || die "could not write the config $CONFIG_FILE"
    say "Saved $(config_items) in $CONFIG_FILE (mode 600)"
}

# ISStreamer's ~/isstreamer.ini is read before the user config dir: say so, or the new
# settings would seem to be ignored.
warn_shadowing_config() {
    if [ -f "$HOME/isstreamer.ini" ] && [ "$HOME/isstreamer.ini" != "$CONFIG_FILE" ]; then
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

# ---------------------------------------------------------------------------- service

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

systemd_env() {
    local s="$1=$2"
    s="${s//%/%%}"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf 'Environment="%s"\n' "$s"
}

render_unit() {
    cat <<EOF
[Unit]
Description=isstreamer: system telemetry (isstreamer metrics)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$(systemd_word "$COMMAND") metrics
Restart=on-failure
RestartSec=15
Environment=PYTHONUNBUFFERED=1
EOF
    # The service must find the config and spool where this installer put them.
    if [ -n "${XDG_CONFIG_HOME:-}" ]; then
        systemd_env XDG_CONFIG_HOME "$XDG_CONFIG_HOME"
    fi
    if [ -n "${XDG_DATA_HOME:-}" ]; then
        systemd_env XDG_DATA_HOME "$XDG_DATA_HOME"
    fi
    cat <<EOF

[Install]
WantedBy=$WANTED_BY
EOF
}

# True when the unit file is ours: it runs this prefix's command.
unit_is_ours() {
    [ -f "$UNIT_FILE" ] && grep -qF -- "ExecStart=$(systemd_word "$COMMAND") " "$UNIT_FILE"
}

systemd_reachable() {
    if is_root; then
        [ -d /run/systemd/system ]
    else
        "${SYSTEMCTL[@]}" show-environment >/dev/null 2>&1
    fi
}

systemctl_hint() {
    printf '%s daemon-reload && %s enable %s && %s restart %s' \
        "${SYSTEMCTL[*]}" "${SYSTEMCTL[*]}" "$UNIT_NAME" "${SYSTEMCTL[*]}" "$UNIT_NAME"
}

install_service() {
    SERVICE_STATE="none"
    if ! command -v systemctl >/dev/null 2>&1; then
        warn "systemctl not found: this system does not use systemd, so no service was installed. The unit, for reference:"
        render_unit
        return 0
    fi
    if [ -e "$UNIT_FILE" ] && ! unit_is_ours; then
        die "$UNIT_FILE exists and runs another isstreamer; remove it, or uninstall that one first"
    fi
    mkdir -p -- "$UNIT_DIR" 2>/dev/null || die "cannot create $UNIT_DIR"
    local tmp
    tmp="$(mktemp "$UNIT_DIR/.$UNIT_NAME.XXXXXX")" || die "cannot write in $UNIT_DIR"
    if ! { render_unit >"$tmp" && chmod 644 "$tmp" && mv -f -- "$tmp" "$UNIT_FILE"; }; then
        rm -f -- "$tmp"
        die "could not write $UNIT_FILE"
    fi
    say "Wrote $UNIT_FILE"
    SERVICE_STATE="written"
    if ! systemd_reachable; then
        warn "systemd is not reachable from here (no running systemd or no user session), so the service was not started. Once it is: $(systemctl_hint)"
        return 0
    fi
    if "${SYSTEMCTL[@]}" daemon-reload && "${SYSTEMCTL[@]}" enable --quiet "$UNIT_NAME" \
        && "${SYSTEMCTL[@]}" restart "$UNIT_NAME"; then
        SERVICE_STATE="running"
        say "Started $UNIT_NAME"
    else
        warn "the unit is installed but systemctl could not start it; see: $(journal_hint)"
    fi
    if ! config_has_key; then
        warn "no access key in $CONFIG_FILE yet: the service cannot send anything until you add one"
    fi
}

# An upgrade must restart a running service, or it keeps running the old code.
restart_existing_service() {
    if [ "$WANT_SERVICE" = 0 ] && unit_is_ours && command -v systemctl >/dev/null 2>&1 \
        && systemd_reachable; then
        if "${SYSTEMCTL[@]}" try-restart "$UNIT_NAME" >/dev/null 2>&1; then
            say "Restarted $UNIT_NAME (if it was running)"
        fi
    fi
}

journal_hint() {
    if is_root; then
        printf 'journalctl -u isstreamer -f'
    else
        printf 'journalctl --user -u isstreamer -f'
    fi
}

# ---------------------------------------------------------------------------- steps

dry_run_install() {
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
        say "Would create a virtual environment in $VENV with $ISSTREAMER_PYTHON"
    fi
    say "Would run: $VENV/bin/python -m pip install --upgrade $SOURCE"
    say "Would link $LINK -> $COMMAND"
    if [ -n "$ACCESS_KEY$BUCKET_KEY$BUCKET_NAME" ]; then
        say "Would save $(config_items) in $CONFIG_FILE (mode 600)"
    fi
    if [ "$WANT_SERVICE" = 1 ]; then
        say "Would write $UNIT_FILE and run: $(systemctl_hint)"
        say ""
        render_unit
    fi
}

next_steps() {
    local step1 step2 step3
    case ":$PATH:" in
        *":$BIN_DIR:"*) step1="Check the command: isstreamer --version" ;;
        *) step1="$BIN_DIR is not on your PATH: add it (e.g. in ~/.profile), or run $LINK --version" ;;
    esac
    if config_has_key; then
        step2="Your access key is in $CONFIG_FILE; bucket settings go there too"
    else
        step2="Add your Initial State access key: re-run with --access-key-stdin, or edit $CONFIG_FILE (keep it mode 600)"
    fi
    case "${SERVICE_STATE:-none}" in
        running)
            if is_root; then
                step3="The service is running; follow it with: $(journal_hint)"
            else
                step3="Follow the service with: $(journal_hint); keep it running after logout: loginctl enable-linger $(id -un)"
            fi
            ;;
        written)
            step3="Start the service when systemd is up: $(systemctl_hint)"
            if ! is_root; then
                step3="$step3; then: loginctl enable-linger $(id -un)"
            fi
            ;;
        *) step3="Send system metrics now with: isstreamer metrics (or re-run with --service to start them at boot)" ;;
    esac
    say ""
    say "Next steps:"
    say "  1. $step1"
    say "  2. $step2"
    say "  3. $step3"
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
    link_command
    write_config
    warn_shadowing_config
    SERVICE_STATE="none"
    if [ "$WANT_SERVICE" = 1 ]; then
        install_service
    else
        restart_existing_service
    fi
    say "Installed: $("$COMMAND" --version 2>&1 || printf 'isstreamer (the command did not run: %s --version)' "$COMMAND")"
    next_steps
}

# Remove only what this installer made, checking each piece before it goes.
do_uninstall() {
    local act="Removed"
    if [ "$DRY_RUN" = 1 ]; then
        say "Dry run: nothing will be changed."
        act="Would remove"
    fi
    if unit_is_ours; then
        if [ "$DRY_RUN" = 0 ]; then
            if command -v systemctl >/dev/null 2>&1 && systemd_reachable; then
                "${SYSTEMCTL[@]}" disable --now --quiet "$UNIT_NAME" \
                    || warn "systemctl could not stop or disable $UNIT_NAME"
            fi
            rm -f -- "$UNIT_FILE"
            if command -v systemctl >/dev/null 2>&1 && systemd_reachable; then
                "${SYSTEMCTL[@]}" daemon-reload || true
            fi
        fi
        say "$act $UNIT_FILE"
    elif [ -e "$UNIT_FILE" ]; then
        warn "leaving $UNIT_FILE: it runs another installation, not $COMMAND"
    fi
    if [ -L "$LINK" ] && [ "$(readlink -- "$LINK")" = "$COMMAND" ]; then
        [ "$DRY_RUN" = 1 ] || rm -f -- "$LINK"
        say "$act $LINK"
    elif [ -e "$LINK" ] || [ -L "$LINK" ]; then
        warn "leaving $LINK: it does not point to $COMMAND"
    fi
    if [ -d "$VENV" ]; then
        [ -f "$VENV/pyvenv.cfg" ] || die "$VENV is not a virtual environment; not removing it"
        [ "$DRY_RUN" = 1 ] || rm -rf -- "$VENV"
        say "$act $VENV"
    else
        say "No virtual environment in $VENV"
    fi
    [ "$DRY_RUN" = 1 ] || rmdir -- "$PREFIX" 2>/dev/null || true

    if [ "$PURGE" = 1 ]; then
        if [ -e "$CONFIG_FILE" ]; then
            [ "$DRY_RUN" = 1 ] || rm -f -- "$CONFIG_FILE"
            say "$act $CONFIG_FILE"
        fi
        if [ -e "$SPOOL_DIR" ]; then
            [ "$DRY_RUN" = 1 ] || rm -rf -- "$SPOOL_DIR"
            say "$act $SPOOL_DIR (unsent data)"
        fi
        if [ "$DRY_RUN" = 0 ]; then
            rmdir -- "$(dirname -- "$CONFIG_FILE")" 2>/dev/null || true
            rmdir -- "$DATA_DIR" 2>/dev/null || true
        fi
    else
        say "Kept your config ($CONFIG_FILE) and spool ($SPOOL_DIR); --uninstall --purge removes them"
    fi
}

main() {
    trap 'on_unexpected_error "$?" "$LINENO"' ERR
    set -o errtrace
    parse_args "$@"
    set_paths
    if [ "$UNINSTALL" = 1 ]; then
        do_uninstall
    else
        do_install
    fi
}

main "$@"
