#!/usr/bin/env bash
# The isolated network namespace the independent servers and the suites run in.
#   servers/netns.sh up       create it: only `lo` (up), resolv.conf -> 127.0.0.10
#   servers/netns.sh down     delete it and its /etc/netns entry
#   servers/netns.sh exec CMD...   run CMD inside it
#   servers/netns.sh check    fail unless it exists and routes nothing but loopback
# `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf for the
# processes it starts, so Postfix's libc resolver asks the harness zone server and nothing else.
set -euo pipefail
NS="${MAILHARNESS_NETNS:-mailharness-ci}"
DNS_ADDRESS=127.0.0.10

check() {
    ip netns list | grep -qw -- "$NS" || { echo "netns: $NS does not exist" >&2; return 1; }
    local links routes
    links=$(ip netns exec "$NS" ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
    [[ "$links" == "lo " ]] || { echo "netns: $NS has interfaces other than lo: $links" >&2; return 1; }
    # Only the kernel's loopback routes (table local, dev lo) may exist; the main table is empty.
    routes=$(ip netns exec "$NS" ip route show table all | grep -v ' dev lo ' || true)
    [[ -z "$routes" ]] || { echo "netns: $NS routes beyond loopback: $routes" >&2; return 1; }
    [[ -z "$(ip netns exec "$NS" ip route show)" ]] || { echo "netns: $NS main table not empty" >&2; return 1; }
    ip netns exec "$NS" grep -qx "nameserver $DNS_ADDRESS" /etc/resolv.conf \
        || { echo "netns: resolv.conf inside $NS does not name $DNS_ADDRESS" >&2; return 1; }
}

case "${1:-}" in
    up)
        if ! ip netns list | grep -qw -- "$NS"; then
            ip netns add "$NS"
        fi
        mkdir -p "/etc/netns/$NS"
        printf 'nameserver %s\noptions attempts:1 timeout:2\n' "$DNS_ADDRESS" > "/etc/netns/$NS/resolv.conf"
        # Names are never looked up in files either way (Postfix is given addresses), but keep
        # the namespace's hosts file to loopback alone.
        printf '127.0.0.1 localhost\n' > "/etc/netns/$NS/hosts"
        ip netns exec "$NS" ip link set lo up
        check
        echo "netns: $NS is up (lo only; resolver $DNS_ADDRESS)"
        ;;
    down)
        if ip netns list | grep -qw -- "$NS"; then
            ip netns delete "$NS"
        fi
        rm -rf "/etc/netns/$NS"
        rmdir --ignore-fail-on-non-empty /etc/netns 2>/dev/null || true
        echo "netns: $NS deleted"
        ;;
    exec)
        shift
        exec ip netns exec "$NS" "$@"
        ;;
    check)
        check && echo "netns: $NS: lo only, no routes beyond loopback, resolver $DNS_ADDRESS"
        ;;
    *)
        echo "usage: $0 up|down|check|exec CMD..." >&2
        exit 2
        ;;
esac
