# HTTPS, HTTP/2 and a forward proxy under the kernel: the helper fetches through the one HTTP
# layer every command uses (userspace/lib/src/http/).

# http_ca DIR: a throw-away CA (DIR/ca.pem) and a certificate for 127.0.0.1 and localhost
# (DIR/srv.pem, DIR/srv.key) signed by it.
http_ca() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=httpblk VM test CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/srv.key" -out "$d/srv.csr" -subj "/CN=httpblk VM test server" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/srv.ext"
    openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 2 \
        -days 2 -extfile "$d/srv.ext" -out "$d/srv.pem" 2>/dev/null
}

# nginx_tls_serve DIR PORT CERTDIR: nginx with TLS and HTTP/2 on 127.0.0.1:PORT.
nginx_tls_serve() {
    local root=$1 port=$2 certs=$3 d=$LOG_DIR/nginx-$2
    mkdir -p "$d"
    cat >"$d.conf" <<CONF
user root;
worker_processes 2;
pid $d/pid;
error_log $d/error.log;
events { worker_connections 1024; }
http {
    log_format t '\$request_uri \$status \$server_protocol \$connection';
    access_log $d/access.log t;
    client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
    uwsgi_temp_path $d; scgi_temp_path $d;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $certs/srv.pem;
        ssl_certificate_key $certs/srv.key;
        root $root;
    }
}
CONF
    nginx -e "$d/error.log" -c "$d.conf" || fail "nginx did not start"
    for _ in $(seq 50); do
        curl -s -o /dev/null --cacert "$certs/ca.pem" "https://127.0.0.1:$port/" && return 0
        sleep 0.1
    done
    fail "nginx on 127.0.0.1:$port did not come up"
}

# squid_start DIR PORT: Squid as a forward proxy on 127.0.0.1:PORT (memory cache, log in
# DIR/access.log). DIR must be writable by Squid's own user. Its pid is left in SQUID_PID.
squid_start() {
    local d=$1 port=$2
    cat >"$d/squid.conf" <<CONF
http_port 127.0.0.1:$port
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log squid
cache_store_log none
coredump_dir $d
cache_mem 64 MB
http_access allow all
icp_port 0
htcp_port 0
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
CONF
    squid -N -f "$d/squid.conf" >"$d/stderr.log" 2>&1 &
    SQUID_PID=$!
    for _ in $(seq 100); do
        kill -0 "$SQUID_PID" 2>/dev/null || fail "squid exited: $(tail -3 "$d/cache.log")"
        curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "squid on 127.0.0.1:$port did not come up"
}

test_https_http2_through_squid_reads_whole_device() {
    # Proves: a device attached over HTTPS (nginx with TLS and HTTP/2, a throw-away CA given
    # with --ca-cert) through Squid (https_proxy, a CONNECT tunnel) reads whole and equal to
    # the source image (sha256), with no I/O error; Squid's log shows the tunnel, nginx's
    # shows the blocks came over HTTP/2; status shows the proxied mirror without secrets.
    command -v squid >/dev/null || skip "squid is not installed (tests/setup.sh installs it)"
    command -v openssl >/dev/null || skip "openssl is not installed"
    insmod "$KO"
    local d
    d=$(mktemp -d /tmp/http.XXXXXX)
    chmod 0777 "$d"
    http_ca "$d"
    nginx_tls_serve "$W/st-lz4" 8443 "$d"
    squid_start "$d" 3128
    # Expanded now: the function's locals are gone when the test's shell exits.
    trap "kill $SQUID_PID 2>/dev/null; cp $d/*.log $LOG_DIR/ 2>/dev/null; true" EXIT
    env | grep -i _proxy >"$LOG_DIR/proxy-env.txt" || true
    unset no_proxy NO_PROXY http_proxy all_proxy ALL_PROXY
    export https_proxy=http://127.0.0.1:3128
    dev=$(attach "https://127.0.0.1:8443/ext4.hbi?sig=vmsecret" --ca-cert "$d/ca.pem") \
        || fail "attach"
    unset https_proxy
    [ "$(sha "$dev")" = "$(want_sha ext4.img)" ] || fail "data differs"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    local blocks h2
    blocks=$(grep -c '^/blocks/' "$LOG_DIR/nginx-8443/access.log")
    h2=$(grep '^/blocks/' "$LOG_DIR/nginx-8443/access.log" | grep -c ' HTTP/2.0 ')
    say "$blocks block requests, $h2 over HTTP/2"
    [ "$blocks" -gt 0 ] && [ "$blocks" = "$h2" ] || fail "blocks not (all) over HTTP/2"
    grep -c '?sig=vmsecret' "$LOG_DIR/nginx-8443/access.log" >/dev/null || fail "query dropped"
    "$B" status >"$LOG_DIR/status.txt"
    "$B" status --json >>"$LOG_DIR/status.txt"
    cat "/sys/block/$(basename "$dev")/httpblk/url" >>"$LOG_DIR/status.txt"
    ! grep -q vmsecret "$LOG_DIR/status.txt" || fail "status shows the URL's query"
    grep -q '"address": "proxy"' "$LOG_DIR/status.txt" || fail "status does not show the proxy"
    # Squid logs a CONNECT when its tunnel closes: when the helper has gone.
    detach "$dev"
    squid_saw_tunnel() { grep -q "CONNECT 127.0.0.1:8443" "$d/access.log"; }
    for _ in $(seq 50); do squid_saw_tunnel && break; sleep 0.1; done
    squid_saw_tunnel || fail "the helper did not go through Squid"
}

test_bench_https_cold_read() {
    # A benchmark, not a test (bench/vm-https.sh runs it): cold sequential reads of the whole
    # 24 MiB raw image (codec none, so every byte crosses TLS) over plain HTTP, HTTPS with
    # HTTP/2 and HTTPS with HTTP/1.1 from one nginx, the module reloaded before each so its
    # cache is empty; two rounds. Prints seconds per read.
    [ -n "${HTTPBLK_TESTS:-}" ] || skip "a benchmark: bench/vm-https.sh runs it"
    command -v openssl >/dev/null || skip "openssl is not installed"
    insmod "$KO"
    local d round mode url t0 t1
    d=$(mktemp -d /tmp/http.XXXXXX)
    http_ca "$d"
    nginx_tls_serve "$W/st" 8443 "$d"
    nginx_serve "$W/st" 8080
    for round in 1 2; do
        for mode in http https-h2 https-h1; do
            case $mode in
                http) set -- http://127.0.0.1:8080/raw.hbi ;;
                https-h2) set -- https://127.0.0.1:8443/raw.hbi --ca-cert "$d/ca.pem" ;;
                https-h1) set -- https://127.0.0.1:8443/raw.hbi --ca-cert "$d/ca.pem" --http1 ;;
            esac
            dev=$(attach "$@") || fail "attach $mode"
            t0=$(date +%s.%N)
            dd if="$dev" of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read over $mode"
            t1=$(date +%s.%N)
            [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "I/O errors over $mode"
            say "figure round=$round mode=$mode secs=$(echo "$t1 - $t0" | bc)"
            detach "$dev"
            rmmod httpblk && insmod "$KO"
        done
    done
}
