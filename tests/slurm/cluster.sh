#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the cluster backend's tests (see shared/reference/SLURM.md).
#   cluster.sh start DIR [NODE_LOCAL]
#                          munge and Slurm daemons with everything (key, config, state, logs) under DIR; prints
#                          the SLURM_CONF to use, once the node is idle. With NODE_LOCAL (a folder), the node (slurmd
#                          and its jobs) sees an empty tmpfs of its own there, as on a node's local disk: what its
#                          jobs write there never shows up here
#   cluster.sh stop DIR    cancels every job, stops the daemons started in DIR
# Needs Debian's slurmctld, slurmd, slurm-client and munge (`./x test` installs them), and root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The daemons live in sbin, which a user's PATH may leave out.
export PATH=$PATH:/usr/sbin:/sbin

# Prints a TCP port no one listens on, from a range Slurm's defaults (6817/6818) stay out of.
free_port() {
  local port
  for port in $(shuf -i 20000-60000 -n 50); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  echo "no free port found" >&2
  return 1
}

start() {
  local dir=$1 node_local=${2:-}
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || { echo "$tool not found: ./x test installs slurmctld, slurmd, slurm-client and munge" >&2; exit 1; }
  done
  mkdir -p "$dir/state" "$dir/spool"
  dir=$(cd "$dir" && pwd)
  head -c 1024 /dev/urandom >"$dir/munge.key"
  chmod 0400 "$dir/munge.key"
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munge.seed"
  local host cpus memory_mb
  host=$(hostname -s)
  cpus=$(nproc)
  memory_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
  sed -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY@|$memory_mb|g" -e "s|@DIR@|$dir|g" \
    -e "s|@PORT@|$(free_port)|g" -e "s|@SLURMD_PORT@|$(free_port)|g" "$HERE/slurm.conf.in" >"$dir/slurm.conf"
  echo "AuthInfo=socket=$dir/munge.socket" >>"$dir/slurm.conf"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -c
  if [ -n "$node_local" ]; then
    # shellcheck disable=SC2016 # $1 is the inner shell's
    unshare --mount --propagation private sh -c 'mount -t tmpfs node-local "$1" && exec slurmd' sh "$node_local"
  else
    slurmd
  fi
  local tries
  for tries in $(seq 1 120); do
    [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && { echo "$SLURM_CONF"; return; }
    sleep 0.5
  done
  echo "the node did not become idle in 60 s (after $tries polls); slurmctld's log:" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  stop "$dir"
  exit 1
}

stop() {
  local dir=$1 pid_file
  export SLURM_CONF=$dir/slurm.conf
  if [ -f "$SLURM_CONF" ]; then scancel --user="$(id -un)" 2>/dev/null || true; fi
  for pid_file in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    if [ -f "$pid_file" ]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
  done
}

case "${1:-}" in
  start) start "${2:?cluster.sh start DIR [NODE_LOCAL]}" "${3:-}" ;;
  stop) stop "${2:?cluster.sh stop DIR}" ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
