#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost: the device pool of a GPU workstation (profile
# `workstation`, README "A GPU workstation") and CI's cluster for `snakemake --profile <slurm>`.
# Slurm hands each job its own GPUs (CUDA_VISIBLE_DEVICES) and takes them back when the job ends,
# failed or not; no two jobs share one.
#
#   workflow/profiles/workstation/local-slurm.sh install   apt-get Debian's slurm-wlm + munge (skipped when present)
#   workflow/profiles/workstation/local-slurm.sh up        write the config under $BASE, start the daemons, wait for idle
#   workflow/profiles/workstation/local-slurm.sh check     srun + sbatch round trip (proves jobs really run)
#   workflow/profiles/workstation/local-slurm.sh status    which of our daemons are alive; sinfo; squeue
#   workflow/profiles/workstation/local-slurm.sh down      stop only the daemons this script started (pid files)
#   workflow/profiles/workstation/local-slurm.sh wipe      after down: delete $BASE (state, logs, database)
#
# Environment:
#   BASE=/tmp/archscale-slurm   config, state, logs and pid files live here (nothing else is touched
#                               except the /etc/slurm/slurm.conf symlink, see below)
#   ACCT=none|dbd               none (default): no accounting; the Snakemake profile must say
#                               `slurm-status-command: squeue` (sacct would fail, and the executor
#                               would wait for ever). dbd: slurmdbd + MariaDB, so sacct and
#                               `slurm_account` validation work as on a real site (slower start).
#   DB_PORT=33061               MariaDB's port on 127.0.0.1 (ACCT=dbd only)
#   GPUS=0                      >0: the node offers that many GPUs as a `gpu` gres: the real
#                               /dev/nvidia0..GPUS-1 when they exist, else *pretend* ones (null
#                               devices, so the GPU submission path and the per-job device ids
#                               can be exercised on a machine without GPUs)
#
# Why it is built this way (each found the hard way):
# - slurm.conf must sit at the default path /etc/slurm/slurm.conf (we symlink it): the executor's
#   job step strips SLURM_* (SLURM_CONF too) before its in-job `srun`, so a custom path breaks jobs.
# - the node is called localhost while the hostname differs: slurmd runs with `-N localhost`.
# - no cgroups anywhere (proctrack/linuxproc, task/none): works in containers without delegation.
# - MinJobAge=3600: finished jobs stay visible to squeue for an hour (the executor falls back to
#   sacct, which hangs without slurmdbd, when MinJobAge < 3 x its first status delay; and
#   tests/slurm/check_slurm_jobs.py --squeue asks squeue about every job after the run).
# - a daemon we did not start (a munged already running, a site's slurm.conf) is used or refused,
#   never stopped or overwritten; `down` only signals pids from our pid files after checking that
#   the pid still runs the program we started.
set -euo pipefail

BASE=${BASE:-/tmp/archscale-slurm}
ACCT=${ACCT:-none}
DB_PORT=${DB_PORT:-33061}
GPUS=${GPUS:-0}
ETC=$BASE/etc RUN=$BASE/run LOG=$BASE/log STATE=$BASE/state
SYSCONF=/etc/slurm/slurm.conf
T0=$(date +%s%N)

stamp() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[slurm-cluster %4d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2; }
die() { echo "slurm-cluster: $*" >&2; exit 1; }

case "$ACCT" in none|dbd) ;; *) die "ACCT must be none or dbd, not '$ACCT'" ;; esac

wait_for() {  # wait_for <seconds> <what> <cmd...>: poll every 0.2 s
  local n=$(( $1 * 5 )) what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${n}x0.2 s waiting for $what (logs: $LOG)"
}

daemon() {  # daemon <name> <cmd...>: start a self-daemonizing program with no tie to our stdio
  # (an inherited stdout keeps a caller's pipe or $(...) open for as long as the daemon lives)
  local name=$1; shift
  "$@" </dev/null >"$LOG/$name.start.log" 2>&1 || { cat "$LOG/$name.start.log" >&2; die "$name failed to start"; }
}

# --- pid files: ours are $RUN/<name>.pid; a pid counts only while it still runs <program> ---
ours_alive() {  # ours_alive <name> <program>
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$2")" ]
}

stop_ours() {  # stop_ours <name> <program>: TERM, wait up to 10 s, then KILL
  local f=$RUN/$1.pid pid
  if ! ours_alive "$1" "$2"; then rm -f "$f"; return 0; fi
  pid=$(cat "$f")
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; stamp "killed $1 ($pid) after 10 s"; else stamp "stopped $1 ($pid)"; fi
  rm -f "$f"
}

do_install() {
  local pkgs="slurmctld slurmd slurm-client munge"
  local bins="/usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sinfo /usr/sbin/munged"
  if [ "$ACCT" = dbd ]; then
    pkgs="$pkgs slurmdbd mariadb-server"; bins="$bins /usr/sbin/slurmdbd /usr/sbin/mariadbd"
  fi
  local b missing=0
  for b in $bins; do [ -x "$b" ] || missing=1; done
  if [ "$missing" = 0 ]; then stamp "install: already installed ($pkgs)"; return 0; fi
  stamp "install: apt-get $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  # A host with systemd starts the packaged services with the packaged config: stop them, the
  # daemons of this cluster are started (and stopped) by this script only.
  if [ -d /run/systemd/system ]; then
    systemctl stop slurmd slurmctld slurmdbd mariadb 2>/dev/null || true
  fi
  stamp "install: done (slurm $(dpkg-query -W -f='${Version}' slurmctld))"
}

write_conf() {
  mkdir -p "$ETC" "$RUN" "$LOG" "$STATE/ctld" "$STATE/d" /etc/slurm
  if [ -e "$SYSCONF" ] && [ "$(readlink -f "$SYSCONF")" != "$ETC/slurm.conf" ]; then
    die "$SYSCONF exists and is not ours: this host has its own Slurm; not touching it"
  fi
  local cpus mem
  cpus=$(nproc)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=$(( mem * 85 / 100 ))   # leave room for the daemons and the submitting Snakemake
  local gres="" gres_conf=""
  rm -f "$ETC/gres.conf"
  if [ "$GPUS" -gt 0 ]; then
    gres="Gres=gpu:$GPUS"
    if [ -c /dev/nvidia0 ]; then   # a GPU workstation: its devices, its cores and memory
      gres_conf='GresTypes=gpu'
      echo "NodeName=localhost Name=gpu File=/dev/nvidia[0-$((GPUS - 1))]" > "$ETC/gres.conf"
    else
      # Slurm drops a GPU gres without device files; null devices stand in for them
      local i; mkdir -p "$BASE/dev"
      for i in $(seq 0 $((GPUS - 1))); do [ -c "$BASE/dev/gpu$i" ] || mknod "$BASE/dev/gpu$i" c 1 3; done
      # and a pretend GPU node's size, so the workflow profile's GPU-cluster requests (8 cores and
      # 32 GB per GPU) are accepted as they are; slurmd is told to trust the config over the hardware
      cpus=$(( 8 * GPUS + 8 )); mem=$(( 32000 * GPUS + 32000 ))
      gres_conf=$'SlurmdParameters=config_overrides\nGresTypes=gpu'
      echo "NodeName=localhost Name=gpu File=$BASE/dev/gpu[0-$((GPUS - 1))]" > "$ETC/gres.conf"
    fi
  fi
  cat > "$ETC/slurm.conf" <<EOF
# written by workflow/profiles/workstation/local-slurm.sh: a one-node cluster on this machine
ClusterName=archscale-ci
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
KillWait=5
Waittime=0
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres State=UNKNOWN
PartitionName=debug Default=YES Nodes=localhost MaxTime=INFINITE State=UP
$gres_conf
EOF
  if [ "$ACCT" = dbd ]; then
    cat >> "$ETC/slurm.conf" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
EOF
    # slurmdbd reads its config from the default path too; it refuses a world-readable one
    if [ -e /etc/slurm/slurmdbd.conf ] && [ "$(readlink -f /etc/slurm/slurmdbd.conf)" != "$ETC/slurmdbd.conf" ]; then
      die "/etc/slurm/slurmdbd.conf exists and is not ours: not touching it"
    fi
    cat > "$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$ETC/slurmdbd.conf"
    ln -sfn "$ETC/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  else
    echo "AccountingStorageType=accounting_storage/none" >> "$ETC/slurm.conf"
  fi
  if [ "$GPUS" -gt 0 ]; then   # read from beside the default slurm.conf path
    if [ -e /etc/slurm/gres.conf ] && [ "$(readlink -f /etc/slurm/gres.conf)" != "$ETC/gres.conf" ]; then
      die "/etc/slurm/gres.conf exists and is not ours: not touching it"
    fi
    ln -sfn "$ETC/gres.conf" /etc/slurm/gres.conf
  fi
  ln -sfn "$ETC/slurm.conf" "$SYSCONF"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    ours_alive munged /usr/sbin/munged || stamp "munge: using the munged already running (not ours, left alone)"
    return 0
  fi
  [ -s /etc/munge/munge.key ] || {
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  }
  mkdir -p /run/munge && chown munge:munge /run/munge
  daemon munged runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  wait_for 10 "munged" bash -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUN/munged.pid"
}

start_dbd() {
  if [ ! -d "$BASE/mysql/mysql" ]; then
    mariadb-install-db --user=root --datadir="$BASE/mysql" --skip-test-db --auth-root-authentication-method=socket \
      >"$LOG/mariadb-install.log" 2>&1
  fi
  # TCP on 127.0.0.1:$DB_PORT (slurmdbd 22.05 cannot be given a socket path), not on 3306, so a
  # database server that someone else runs is never in the way
  ours_alive mariadbd /usr/sbin/mariadbd || setsid -f /usr/sbin/mariadbd --no-defaults --user=root --datadir="$BASE/mysql" \
    --socket="$RUN/mysqld.sock" --pid-file="$RUN/mariadbd.pid" --bind-address=127.0.0.1 \
    --port="$DB_PORT" --skip-name-resolve --innodb-buffer-pool-size=64M \
    --log-error="$LOG/mariadb.err" </dev/null >/dev/null 2>&1
  wait_for 60 "mariadbd" mariadb-admin --socket="$RUN/mysqld.sock" ping
  mariadb --socket="$RUN/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-ci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  ours_alive slurmdbd /usr/sbin/slurmdbd || daemon slurmdbd /usr/sbin/slurmdbd  # pid file $RUN/slurmdbd.pid
  wait_for 60 "slurmdbd" sacctmgr -n list cluster
}

do_up() {
  if ours_alive slurmctld /usr/sbin/slurmctld && ours_alive slurmd /usr/sbin/slurmd; then
    stamp "up: already running"; return 0
  fi
  write_conf
  stamp "up: start munged"
  start_munge
  if [ "$ACCT" = dbd ]; then stamp "up: start mariadbd + slurmdbd"; start_dbd; fi
  stamp "up: start slurmctld + slurmd"
  ours_alive slurmctld /usr/sbin/slurmctld || daemon slurmctld /usr/sbin/slurmctld  # pid file $RUN/slurmctld.pid
  wait_for 30 "slurmctld" scontrol ping
  ours_alive slurmd /usr/sbin/slurmd || daemon slurmd /usr/sbin/slurmd -N localhost    # pid file $RUN/slurmd.pid
  wait_for 60 "node localhost idle" bash -c '[ "$(sinfo -h -n localhost -o %t)" = idle ]'
  if [ "$ACCT" = dbd ]; then
    wait_for 30 "cluster row in slurmdbd" bash -c 'sacctmgr -n -P list cluster format=cluster | grep -qx archscale-ci'
    sacctmgr -i add account ci Description=ci Organization=ci >/dev/null 2>&1 || true
    sacctmgr -i add user root Account=ci DefaultAccount=ci >/dev/null 2>&1 || true
  fi
  stamp "up: cluster ready ($(sinfo -h -o '%P %D %c cpus %m MB %t'))"
}

do_check() {
  stamp "check: srun"
  local out id dir=$BASE/check
  out=$(srun -t 1 -N 1 -n 1 bash -c 'echo "$SLURM_JOB_ID"')
  [[ "$out" =~ ^[0-9]+$ ]] || die "srun printed '$out', expected a job id"
  stamp "check: sbatch"
  mkdir -p "$dir"
  id=$(sbatch --parsable -t 1 -o "$dir/%j.out" -D "$dir" --wrap 'echo "SLURM_JOB_ID=$SLURM_JOB_ID"')
  # squeue polling: `sbatch --wait` polls slowly (tens of seconds)
  wait_for 60 "batch job $id" bash -c "[ \"\$(squeue -h -t all -j $id -o %T)\" = COMPLETED ]"
  grep -qx "SLURM_JOB_ID=$id" "$dir/$id.out" || die "batch job $id did not write its id (see $dir/$id.out)"
  if [ "$ACCT" = dbd ]; then sacct -n -X -j "$id" -o JobID,State,Account >&2; fi
  stamp "check: ok (srun job $out, sbatch job $id)"
}

do_status() {
  local name prog rc=0
  for name in munged:/usr/sbin/munged mariadbd:/usr/sbin/mariadbd slurmdbd:/usr/sbin/slurmdbd \
              slurmctld:/usr/sbin/slurmctld slurmd:/usr/sbin/slurmd; do
    prog=${name#*:}; name=${name%%:*}
    if ours_alive "$name" "$prog"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"
    elif [ -e "$RUN/$name.pid" ]; then echo "$name: dead (stale pid file)"; rc=1
    fi
  done
  if ours_alive slurmctld /usr/sbin/slurmctld; then sinfo; squeue; else echo "cluster: down"; rc=1; fi
  return $rc
}

do_down() {
  stamp "down: stopping our daemons"
  stop_ours slurmd /usr/sbin/slurmd
  stop_ours slurmctld /usr/sbin/slurmctld
  stop_ours slurmdbd /usr/sbin/slurmdbd
  stop_ours mariadbd /usr/sbin/mariadbd
  stop_ours munged /usr/sbin/munged
  local f
  for f in "$SYSCONF" /etc/slurm/slurmdbd.conf /etc/slurm/gres.conf; do
    if [ -L "$f" ] && [[ "$(readlink "$f")" == "$ETC/"* ]]; then rm -f "$f"; fi
  done
  stamp "down: done"
}

do_wipe() {
  if ours_alive slurmctld /usr/sbin/slurmctld || ours_alive mariadbd /usr/sbin/mariadbd; then
    die "wipe: daemons still running; run down first"
  fi
  rm -rf "$BASE"
  stamp "wipe: removed $BASE"
}

case "${1:-}" in
  install) do_install ;;
  up)      do_up ;;
  check)   do_check ;;
  status)  do_status ;;
  down)    do_down ;;
  wipe)    do_wipe ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
