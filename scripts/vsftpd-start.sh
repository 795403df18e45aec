#!/usr/bin/env bash
# Installs (if needed) and starts vsftpd on 127.0.0.1 for the FTP interop tests.
#
#   sudo scripts/vsftpd-start.sh            # as root
#   ETL_VSFTPD_PORT=2121 cargo test -p etl-workers --test it ftp_watch_against_vsftpd
#
# - local user `etlftp` (password: env FTP_PASSWD, default `etlftp-pass`), chrooted to
#   ETL_VSFTPD_ROOT (default /srv/etlftp), shell /usr/sbin/nologin registered in /etc/shells;
# - listens on 127.0.0.1:${ETL_VSFTPD_PORT:-2121}, passive ports 30000-30009 on 127.0.0.1;
# - no systemd: vsftpd runs in the foreground (background=NO) started with `&`; its pid is
#   written to ${ETL_VSFTPD_STATE:-/run/etl-vsftpd}/vsftpd.pid. Stop it with
#   `kill "$(cat /run/etl-vsftpd/vsftpd.pid)"`.
# Idempotent: a vsftpd already answering on the port is left alone.
set -euo pipefail

PORT="${ETL_VSFTPD_PORT:-2121}"
ROOT="${ETL_VSFTPD_ROOT:-/srv/etlftp}"
STATE="${ETL_VSFTPD_STATE:-/run/etl-vsftpd}"
FTP_USER_NAME="${FTP_USER:-etlftp}"
FTP_PASSWORD="${FTP_PASSWD:-etlftp-pass}"
SHELL_PATH=/usr/sbin/nologin

if [ "$(id -u)" -ne 0 ]; then
    echo "vsftpd-start.sh: must run as root (it installs a package and creates a user)" >&2
    exit 2
fi

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if port_open; then
    echo "vsftpd-start.sh: something already listens on 127.0.0.1:$PORT; leaving it alone"
    exit 0
fi

if ! command -v vsftpd >/dev/null 2>&1 && [ ! -x /usr/sbin/vsftpd ]; then
    echo "vsftpd-start.sh: installing vsftpd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends vsftpd >/dev/null
fi
VSFTPD="$(command -v vsftpd || echo /usr/sbin/vsftpd)"

# The user: vsftpd's PAM stack (pam_shells) wants a shell listed in /etc/shells.
grep -qxF "$SHELL_PATH" /etc/shells || echo "$SHELL_PATH" >> /etc/shells
mkdir -p "$ROOT"
if ! id "$FTP_USER_NAME" >/dev/null 2>&1; then
    useradd --home-dir "$ROOT" --no-create-home --shell "$SHELL_PATH" "$FTP_USER_NAME"
fi
echo "$FTP_USER_NAME:$FTP_PASSWORD" | chpasswd
chown "$FTP_USER_NAME": "$ROOT"
chmod 755 "$ROOT"

mkdir -p "$STATE/empty"
chmod 755 "$STATE/empty"
CONFIG="$STATE/vsftpd.conf"
umask 077
cat > "$CONFIG" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root=$ROOT
chroot_local_user=YES
allow_writeable_chroot=YES
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=30000
pasv_max_port=30009
secure_chroot_dir=$STATE/empty
seccomp_sandbox=NO
pam_service_name=vsftpd
use_localtime=NO
xferlog_enable=NO
CONF
chown root:root "$CONFIG"
chmod 600 "$CONFIG"

"$VSFTPD" "$CONFIG" > "$STATE/vsftpd.log" 2>&1 &
echo $! > "$STATE/vsftpd.pid"

for _ in $(seq 1 50); do
    if port_open; then
        echo "vsftpd-start.sh: vsftpd (pid $(cat "$STATE/vsftpd.pid")) on 127.0.0.1:$PORT, root $ROOT, user $FTP_USER_NAME"
        exit 0
    fi
    if ! kill -0 "$(cat "$STATE/vsftpd.pid")" 2>/dev/null; then
        wait "$(cat "$STATE/vsftpd.pid")" && status=0 || status=$?
        echo "vsftpd-start.sh: vsftpd exited with status $status (a bad option exits 2 silently); log:" >&2
        cat "$STATE/vsftpd.log" >&2 || true
        exit 1
    fi
    sleep 0.2
done
echo "vsftpd-start.sh: vsftpd did not answer on 127.0.0.1:$PORT" >&2
exit 1
