#!/bin/sh
# Grows the etcd guard cluster by one member and retires an old one, live (README: "Resize the
# guard cluster"). Run it from a host holding the agent config; start etcd on the new host
# between the two steps, with the flags `member add` prints.
#
#   NEW_NAME=etcd-d NEW_IP=10.0.0.4 OLD=etcd-a ./resize-guard-cluster.sh add
#   NEW_NAME=etcd-d NEW_IP=10.0.0.4 OLD=etcd-a ./resize-guard-cluster.sh finish
set -eu
CONFIG=${CONFIG:-/etc/vigil/agent.yaml}
PKI=${PKI:-/etc/vigil/pki}
: "${NEW_NAME:?name of the new member}" "${NEW_IP:?address of the new member}"

# Identity before trust: the id of the cluster the agents use, read once and named in every
# change, so a wrong endpoint list cannot resize some other cluster.
CLUSTER_ID=$(vigil cluster member list --config "$CONFIG" --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).clusterId))')

case "${1:-}" in
  add)
    # Joins as a learner; prints the etcd flags for the new host and issues its certificate.
    vigil cluster member add --config "$CONFIG" --cluster-id "$CLUSTER_ID" \
      --name "$NEW_NAME" --peer-url "https://$NEW_IP:2380" --client-url "https://$NEW_IP:2379" \
      --pki "$PKI"
    ;;
  finish)
    : "${OLD:?name of the member to retire}"
    NEW_ID=$(vigil cluster member list --config "$CONFIG" --json |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s).members.find(m=>m.peerUrls.includes(process.argv[1]));if(!m)process.exit(1);console.log(m.id)})' \
        "https://$NEW_IP:2380")
    # Waits (up to --wait-ms) until the learner has caught up, then makes it a voter.
    vigil cluster member promote "$NEW_ID" --config "$CONFIG" --cluster-id "$CLUSTER_ID"
    # Refused if it would cost the quorum; moves leadership away first if OLD leads.
    vigil cluster member remove "$OLD" --move-leader --config "$CONFIG" --cluster-id "$CLUSTER_ID"
    vigil cluster member list --config "$CONFIG"
    ;;
  *)
    echo "usage: $0 add|finish" >&2
    exit 2
    ;;
esac
