# shellcheck shell=bash
# Throwaway certificates for the TLS tests (the SASL_SSL Kafka listener, the TLS PostgreSQL cluster, the OpenSearch
# sink's HTTPS stand-in): a CA and certificates it signs, EC P-256 keys (fast to make), made with openssl where they
# are needed and never kept in the repository. Sourced by scripts (kafka.sh, postgres-tls.sh), or run by a test:
#
#   bash scripts/lib/test-ca.sh ca DIR [CN]                 DIR/ca.key, DIR/ca.pem
#   bash scripts/lib/test-ca.sh cert DIR NAME CN [EXT...]   DIR/NAME.key, DIR/NAME.pem signed by DIR's CA; each EXT an
#                                                           extension line, e.g. subjectAltName=IP:127.0.0.1

TEST_CA_DAYS=30
TEST_CA_KEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

# test_ca DIR [CN]: a self-signed CA.
test_ca() {
  local dir="$1" cn="${2:-cryptocast test CA}"
  mkdir -p "$dir"
  openssl req -x509 "${TEST_CA_KEY[@]}" -days "$TEST_CA_DAYS" -subj "/CN=$cn" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
}

# test_cert DIR NAME CN [EXT...]: a certificate for CN signed by the CA in DIR, with the extension lines given.
test_cert() {
  local dir="$1" name="$2" cn="$3"
  shift 3
  openssl req "${TEST_CA_KEY[@]}" -subj "/CN=$cn" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$@" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$TEST_CA_DAYS" -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext" "$dir/ca.srl"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  command -v openssl >/dev/null || { echo "openssl is needed for the test certificates" >&2; exit 1; }
  case "${1:-}" in
  ca) test_ca "$2" "${3:-cryptocast test CA}" ;;
  cert) test_cert "${@:2}" ;;
  *)
    echo "usage: $0 ca DIR [CN] | cert DIR NAME CN [EXT...]" >&2
    exit 2
    ;;
  esac
fi
