#!/usr/bin/env bash
# ============================================================================================
#  FOR TRIALS AND TESTS ONLY — not for production keys.
#  Keys are unencrypted, passwords are random but stored in clear beside them, and the CA key
#  sits next to the certificates it signed. For production, use your organisation's CA.
# ============================================================================================
#
# Makes a throw-away certificate authority, certificates and passwords for Outpost's MQTT
# links, plus a ready-to-run Mosquitto config that uses them with deploy/mosquitto/acl.
#
# Usage:
#   make-test-ca.sh OUTDIR [--port N] [--identity-port N] [--host NAME_OR_IP]... [--site ID]...
#
#   --port N           TLS listener on 127.0.0.1:N: client certificate AND password required
#                      (default 8883)
#   --identity-port N  a second TLS listener on 127.0.0.1:N where the certificate's CN is the
#                      MQTT username (use_identity_as_username; no password); 0 = none
#                      (default 0)
#   --host NAME        extra server name or IP for the server certificate's SAN (repeatable;
#                      localhost, 127.0.0.1 and ::1 are always in)
#   --site ID          a site to enrol (repeatable; default: site-a site-b)
#
# Start the broker with:  mosquitto -c OUTDIR/mosquitto.conf
#
# Layout of OUTDIR (stable: tests rely on it):
#   ca.crt ca.key                  the test CA
#   server.crt server.key          broker certificate (SAN: localhost, 127.0.0.1, ::1, --host)
#   clients/outpost-collector.crt  collector client certificate (CN = outpost-collector)
#   clients/outpost-collector.key
#   clients/SITE.crt clients/SITE.key        per-site client certificate (CN = site id)
#   creds/USER.username creds/USER.password  MQTT username and password, one per file, for
#                                  the agents' and collector's username_file/password_file
#                                  (USER = outpost-collector or a site id)
#   passwd                         Mosquitto password file (hashed) for every USER
#   acl                            copy of deploy/mosquitto/acl
#   mosquitto.conf                 broker config using all of the above (log: mosquitto.log)
#   expired/SITE.crt expired/SITE.key        first site's certificate, signed by the test CA,
#                                  valid only in 2020: must be refused
#   wrong-ca/ca.crt wrong-ca/ca.key          an unrelated CA
#   wrong-ca/SITE.crt wrong-ca/SITE.key      first site's CN signed by the unrelated CA: must
#                                  be refused
#   env                            shell variables: PORT, IDENTITY_PORT, SITES
set -euo pipefail

die() {
    echo "make-test-ca.sh: $*" >&2
    exit 2
}

[[ $# -ge 1 ]] || die "usage: make-test-ca.sh OUTDIR [--port N] [--identity-port N] [--host NAME]... [--site ID]..."
out="$1"
shift
port=8883
identity_port=0
hosts=()
sites=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) port="${2:?--port needs a number}"; shift 2 ;;
        --identity-port) identity_port="${2:?--identity-port needs a number}"; shift 2 ;;
        --host) hosts+=("${2:?--host needs a name or IP}"); shift 2 ;;
        --site) sites+=("${2:?--site needs an id}"); shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
[[ ${#sites[@]} -gt 0 ]] || sites=(site-a site-b)
for site in "${sites[@]}"; do
    [[ "$site" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
        die "site id \"$site\" is not valid; expected a-z, 0-9 and '-', starting with a letter or digit"
done
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"
command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd is not installed (apt-get install mosquitto)"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"/{clients,creds,expired,wrong-ca}
out="$(cd "$out" && pwd)"
umask 077

# EC P-256 keys: quick to make, and every TLS stack (rustls, OpenSSL) accepts them.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # DIR CN
    newkey "$1/ca.key"
    openssl req -x509 -new -key "$1/ca.key" -sha256 -days 3650 -subj "/O=Outpost test/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1/ca.crt"
}

sign() { # CA_DIR NAME_PREFIX CN EXTFILE
    local ca="$1" prefix="$2" cn="$3" ext="$4"
    newkey "$prefix.key"
    openssl req -new -key "$prefix.key" -subj "/O=Outpost test/CN=$cn" -out "$prefix.csr"
    openssl x509 -req -in "$prefix.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
        -sha256 -days 825 -extfile "$ext" -out "$prefix.crt" 2>/dev/null
    rm -f "$prefix.csr"
}

make_ca "$out" "Outpost TEST CA (not for production)"
make_ca "$out/wrong-ca" "Unrelated TEST CA"

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "${hosts[@]}"; do
    if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+=",IP:$h"; else san+=",DNS:$h"; fi
done
cat >"$out/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EOF
cat >"$out/client.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF

sign "$out" "$out/server" "localhost" "$out/server.ext"
users=(outpost-collector "${sites[@]}")
for user in "${users[@]}"; do
    sign "$out" "$out/clients/$user" "$user" "$out/client.ext"
done
first="${sites[0]}"
sign "$out/wrong-ca" "$out/wrong-ca/$first" "$first" "$out/client.ext"

# The expired certificate: `openssl x509` cannot back-date, `openssl ca` can.
ca_db="$(mktemp -d)"
trap 'rm -rf "$ca_db"' EXIT
: >"$ca_db/index.txt"
echo 1000 >"$ca_db/serial"
cat >"$ca_db/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $ca_db/index.txt
serial = $ca_db/serial
new_certs_dir = $ca_db
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
organizationName = optional
EOF
newkey "$out/expired/$first.key"
openssl req -new -key "$out/expired/$first.key" -subj "/O=Outpost test/CN=$first" \
    -out "$ca_db/expired.csr"
openssl ca -batch -config "$ca_db/ca.cnf" -cert "$out/ca.crt" -keyfile "$out/ca.key" \
    -startdate 20200101000000Z -enddate 20200102000000Z -extfile "$out/client.ext" \
    -in "$ca_db/expired.csr" -out "$out/expired/$first.crt" -notext 2>/dev/null

# MQTT passwords: random, one per user.
rm -f "$out/passwd"
for user in "${users[@]}"; do
    printf '%s' "$user" >"$out/creds/$user.username"
    openssl rand -hex 16 | tr -d '\n' >"$out/creds/$user.password"
    if [[ -f "$out/passwd" ]]; then
        mosquitto_passwd -b "$out/passwd" "$user" "$(cat "$out/creds/$user.password")"
    else
        mosquitto_passwd -c -b "$out/passwd" "$user" "$(cat "$out/creds/$user.password")"
    fi
done
cp "$here/acl" "$out/acl"

# Mosquitto run as root drops to the `mosquitto` user, which cannot read a private temp dir.
run_as=""
if [[ "$(id -u)" == 0 ]]; then run_as="user root"; fi

{
    cat <<EOF
# FOR TRIALS AND TESTS ONLY — generated by make-test-ca.sh.
$run_as
per_listener_settings true
persistence false
log_dest file $out/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
max_packet_size 1048576
max_queued_messages 10000

# Certificate AND password: the production setup.
listener $port 127.0.0.1
protocol mqtt
allow_anonymous false
password_file $out/passwd
acl_file $out/acl
cafile $out/ca.crt
certfile $out/server.crt
keyfile $out/server.key
require_certificate true
EOF
    if [[ "$identity_port" != 0 ]]; then
        cat <<EOF

# Certificate only: the certificate's CN is the MQTT username.
listener $identity_port 127.0.0.1
protocol mqtt
allow_anonymous false
acl_file $out/acl
cafile $out/ca.crt
certfile $out/server.crt
keyfile $out/server.key
require_certificate true
use_identity_as_username true
EOF
    fi
} >"$out/mosquitto.conf"

cat >"$out/env" <<EOF
PORT=$port
IDENTITY_PORT=$identity_port
SITES="${sites[*]}"
EOF
rm -f "$out"/*.srl "$out"/wrong-ca/*.srl "$out/server.ext" "$out/client.ext"
# Readable by the caller only; the broker runs as the caller (or as root, see above).
chmod -R go-rwx "$out"
echo "test CA, certificates and mosquitto.conf written to $out (FOR TRIALS AND TESTS ONLY)"
