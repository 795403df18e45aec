#!/usr/bin/env bash
# Installs (if needed) and starts vsftpd on 127.0.0.1 for the FTP interop tests.
#
#   sudo scripts/vsftpd-start.sh            # as root
#   ETL_VSFTPD_PORT=2121 cargo test -p etl-workers --test it ftp_watch_against_vsftpd
#   ETL_VSFTPD_TLS_PORT=2990 ETL_VSFTPD_TLS_CA=/run/etl-vsftpd/tls/ca.pem cargo test -p etl-workers --test it ftps
#
# - local user `etlftp` (password: env FTP_PASSWD, default `etlftp-pass`), chrooted to
#   ETL_VSFTPD_ROOT (default /srv/etlftp), shell /usr/sbin/nologin registered in /etc/shells;
# - listens on 127.0.0.1:${ETL_VSFTPD_PORT:-2121}, passive ports 30000-30009 on 127.0.0.1;
# - no systemd: vsftpd runs in the foreground (background=NO) started with `&`; its pid is
#   written to ${ETL_VSFTPD_STATE:-/run/etl-vsftpd}/vsftpd.pid. Stop it with
#   `kill "$(cat /run/etl-vsftpd/vsftpd.pid)"`.
# - a second vsftpd with explicit FTPS required (`ssl_enable=YES`, `AUTH TLS`, protected data
#   connections) on 127.0.0.1:${ETL_VSFTPD_TLS_PORT:-2990}, passive ports 30010-30019, same user
#   and root; its certificate (CN and SAN 127.0.0.1 and localhost) is signed by a private CA this
#   script makes with openssl: ${ETL_VSFTPD_STATE}/tls/ca.pem is the CA bundle clients need
#   (ETL_VSFTPD_TLS_CA). Its pid is in ${ETL_VSFTPD_STATE}/vsftpd-tls.pid.
# Idempotent: a vsftpd already answering on a port is left alone.
set -euo pipefail

PORT="${ETL_VSFTPD_PORT:-2121}"
TLS_PORT="${ETL_VSFTPD_TLS_PORT:-2990}"
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
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if port_open "$PORT" && port_open "$TLS_PORT"; then
    echo "vsftpd-start.sh: something already listens on 127.0.0.1:$PORT and :$TLS_PORT; leaving them alone"
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
umask 077

# The private CA and the TLS server's certificate (made once, kept across restarts).
TLS_DIR="$STATE/tls"
if [ ! -s "$TLS_DIR/server.pem" ] || [ ! -s "$TLS_DIR/ca.pem" ]; then
    command -v openssl >/dev/null 2>&1 || {
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends openssl >/dev/null
    }
    mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=etl test CA" \
        -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$TLS_DIR/server.ext"
    openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
        -CAcreateserial -days 3650 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" 2>/dev/null
    rm -f "$TLS_DIR/server.csr"
fi
chmod 755 "$TLS_DIR"
chmod 644 "$TLS_DIR/ca.pem"

# write_config FILE PORT PASV_MIN PASV_MAX [extra lines]
write_config() {
    local file="$1" port="$2" pasv_min="$3" pasv_max="$4" extra="${5:-}"
    cat > "$file" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
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
pasv_min_port=$pasv_min
pasv_max_port=$pasv_max
secure_chroot_dir=$STATE/empty
seccomp_sandbox=NO
pam_service_name=vsftpd
use_localtime=NO
xferlog_enable=NO
$extra
CONF
    chown root:root "$file"
    chmod 600 "$file"
}

# start NAME CONFIG PORT: starts vsftpd unless the port answers already; waits for it.
start() {
    local name="$1" config="$2" port="$3" pid
    if port_open "$port"; then
        echo "vsftpd-start.sh: something already listens on 127.0.0.1:$port; leaving it alone"
        return 0
    fi
    "$VSFTPD" "$config" > "$STATE/$name.log" 2>&1 &
    echo $! > "$STATE/$name.pid"
    pid="$(cat "$STATE/$name.pid")"
    for _ in $(seq 1 50); do
        if port_open "$port"; then
            echo "vsftpd-start.sh: $name (pid $pid) on 127.0.0.1:$port, root $ROOT, user $FTP_USER_NAME"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" && status=0 || status=$?
            echo "vsftpd-start.sh: $name exited with status $status (a bad option exits 2 silently); log:" >&2
            cat "$STATE/$name.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    echo "vsftpd-start.sh: $name did not answer on 127.0.0.1:$port" >&2
    exit 1
}

write_config "$STATE/vsftpd.conf" "$PORT" 30000 30009
# require_ssl_reuse=NO: rustls clients do not resume the control connection's TLS session on
# data connections, which vsftpd demands by default.
write_config "$STATE/vsftpd-tls.conf" "$TLS_PORT" 30010 30019 "ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
ssl_tlsv1=YES
ssl_sslv2=NO
ssl_sslv3=NO
require_ssl_reuse=NO
ssl_ciphers=HIGH
rsa_cert_file=$TLS_DIR/server.pem
rsa_private_key_file=$TLS_DIR/server.key"

start vsftpd "$STATE/vsftpd.conf" "$PORT"
start vsftpd-tls "$STATE/vsftpd-tls.conf" "$TLS_PORT"
echo "vsftpd-start.sh: FTPS clients need the CA bundle $TLS_DIR/ca.pem (ETL_VSFTPD_TLS_CA)"
