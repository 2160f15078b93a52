#!/bin/sh
# Makes the listed Redis nodes one Redis Cluster, and is safe to run again:
# the Kubernetes component runs it as a Job, compose's cluster profile as a
# one-shot service, and deploy/bootstrap_test.go against real redis-servers.
#
# Environment:
#   REDIS_CLUSTER_NODES     the nodes, host:port, separated by commas or
#                           spaces (CLUSTER MEET and --cluster create take
#                           IP addresses: each node is asked its own, the
#                           local address of our connection in CLIENT INFO,
#                           so nothing but redis-cli is needed to resolve)
#   REDIS_CLUSTER_REPLICAS  replicas per primary (default 1)
#   REDIS_CLUSTER_WAIT      seconds to wait for the nodes to answer, and
#                           again for the cluster to settle (default 300)
#   REDISCLI_AUTH           the password; redis-cli reads it from the
#                           environment, so it is on no command line
#
# What it does depends on what the nodes say:
#   - every node says cluster_state:ok and knows every listed node: nothing;
#   - every node is alone and empty (new volumes): redis-cli --cluster create;
#   - otherwise, when some node holds slots (pods that came back with new IP
#     addresses, a create cut short, a node whose volume was replaced): that
#     node MEETs every other one, so all learn each other's current address,
#     then it waits for cluster_state:ok, and makes each primary that
#     holds no slots (a node back from an empty volume) a replica of a
#     primary short of replicas.
# It never resets, flushes or moves slots: a cluster it cannot bring to ok
# is left for a person (redis-cli --cluster check, docs/OPERATIONS.md).
set -e

say() { echo "redis-cluster-bootstrap: $*"; }
fail() {
	echo "redis-cluster-bootstrap: $*" >&2
	exit 1
}

# Before set -u: unset and empty get the same message. (The password is
# only ever tested here, by a builtin, never expanded into a command.)
case "$REDISCLI_AUTH" in
"") fail "REDISCLI_AUTH (TRELLIS_REDIS_PASSWORD) is empty" ;;
esac
set -u
nodes=$(printf '%s' "${REDIS_CLUSTER_NODES:-}" | tr ',' ' ')
replicas=${REDIS_CLUSTER_REPLICAS:-1}
wait_s=${REDIS_CLUSTER_WAIT:-300}
count=0
for n in $nodes; do count=$((count + 1)); done
[ "$count" -gt 0 ] || fail "REDIS_CLUSTER_NODES is empty"
min=$((3 * (replicas + 1)))
[ "$count" -ge "$min" ] || fail "REDIS_CLUSTER_NODES has $count nodes; 3 primaries with $replicas replicas each need $min"

# cli ADDR ARGS...: redis-cli against one node (the password comes from
# REDISCLI_AUTH), replies without the CR of the protocol.
cli() {
	cli_addr=$1
	shift
	redis-cli -h "${cli_addr%:*}" -p "${cli_addr##*:}" "$@" 2>&1 | tr -d '\r'
}
# info ADDR FIELD: one field of CLUSTER INFO.
info() { cli "$1" cluster info | sed -n "s/^$2://p"; }
deadline() { echo $(($(date +%s) + wait_s)); }

# 1. Every node answers, and says at which IP address. A wrong password
# fails at once: no amount of waiting mends it.
until_t=$(deadline)
addrs=""
for n in $nodes; do
	while :; do
		reply=$(cli "$n" ping)
		case $reply in
		*PONG*)
			a=$(cli "$n" client info | tr ' ' '\n' | sed -n 's/^laddr=//p')
			[ -n "$a" ] && break
			reply="CLIENT INFO names no laddr" ;;
		*WRONGPASS* | *NOAUTH* | *"invalid password"* | *"AUTH failed"*)
			fail "node $n refuses the password: is TRELLIS_REDIS_PASSWORD the one the nodes were started with? ($reply)" ;;
		esac
		[ "$(date +%s)" -lt "$until_t" ] || fail "node $n did not answer within ${wait_s}s (REDIS_CLUSTER_WAIT): $reply"
		sleep 2
	done
	addrs="$addrs $a"
done

# 2. What state are they in?
ok=0
fresh=0
seed=""
for a in $addrs; do
	state=$(info "$a" cluster_state)
	[ -n "$state" ] || fail "node $a: CLUSTER INFO failed; is it started with cluster-enabled yes? ($(cli "$a" cluster info))"
	known=$(info "$a" cluster_known_nodes)
	slots=$(info "$a" cluster_slots_assigned)
	if [ "$state" = ok ] && [ "$known" -ge "$count" ]; then ok=$((ok + 1)); fi
	if [ "$known" = 1 ] && [ "$slots" = 0 ] && [ "$(cli "$a" dbsize)" = 0 ]; then fresh=$((fresh + 1)); fi
	if [ -z "$seed" ] && [ "$slots" != 0 ]; then seed=$a; fi
done

if [ "$ok" = "$count" ]; then
	say "cluster already ok on all $count nodes; nothing to do"
	exit 0
fi
if [ "$fresh" = "$count" ]; then
	say "all $count nodes are new: creating the cluster ($replicas replicas per primary)"
	# shellcheck disable=SC2086 # one argument per node
	redis-cli --cluster create $addrs --cluster-replicas "$replicas" --cluster-yes
elif [ -n "$seed" ]; then
	say "$ok of $count nodes ok, $fresh new: $seed (holds slots) meets every node again"
	for a in $addrs; do
		[ "$a" = "$seed" ] && continue
		# The bus port as the node has it (0: the default, port + 10000).
		bus=$(cli "$a" config get cluster-port | sed -n 2p)
		case $bus in "" | 0) bus=$((${a##*:} + 10000)) ;; esac
		reply=$(cli "$seed" cluster meet "${a%:*}" "${a##*:}" "$bus")
		[ "$reply" = OK ] || fail "CLUSTER MEET $a from $seed: $reply"
	done
else
	fail "no node holds slots, but not every node is new and empty ($fresh of $count are): check each node's CLUSTER NODES and DBSIZE by hand"
fi

# 3. Every node says ok and knows every listed node.
until_t=$(deadline)
for a in $addrs; do
	while :; do
		state=$(info "$a" cluster_state)
		known=$(info "$a" cluster_known_nodes)
		if [ "$state" = ok ] && [ "${known:-0}" -ge "$count" ]; then break; fi
		[ "$(date +%s)" -lt "$until_t" ] || fail "node $a: cluster_state:$state, $known known nodes after ${wait_s}s; see redis-cli --cluster check $a"
		sleep 1
	done
done

# 4. After a repair: a node that came back empty joined as a primary without
# slots. Make it a replica of a primary that has lost one.
if [ -n "$seed" ] && [ "$fresh" != "$count" ]; then
	view=$(cli "$seed" cluster nodes)
	short=$(echo "$view" | awk -v want="$replicas" '
		$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { need[$1] = 1 }
		$3 ~ /slave/ && $3 !~ /fail/ { have[$4]++ }
		END { for (id in need) for (i = have[id]; i < want; i++) print id }')
	spare=$(echo "$view" | awk '$3 ~ /master/ && $3 !~ /fail/ && NF == 8 { split($2, a, "@"); print a[1] }')
	# shellcheck disable=SC2086 # one word per node id
	set -- $short
	for a in $spare; do
		[ $# -gt 0 ] || break
		reply=$(cli "$a" cluster replicate "$1")
		[ "$reply" = OK ] || fail "CLUSTER REPLICATE $1 on $a: $reply"
		say "$a replicates $1"
		shift
	done
fi
say "cluster ok on all $count nodes"
