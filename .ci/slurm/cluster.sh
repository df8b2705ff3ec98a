#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for running the pipeline's `slurm` profile in CI.
#
#   .ci/slurm/cluster.sh up [PID]    install (apt) if needed, start munged, MariaDB, slurmdbd,
#                                    slurmctld, slurmd (those not running yet); wait until the
#                                    node is idle; hold a lease for process PID (none: a manual
#                                    lease). Prints `started` or `reused` on stdout.
#   .ci/slurm/cluster.sh release PID drop PID's lease; the last lease out (dead holders do not
#                                    count, a manual lease always does) runs `down`
#   .ci/slurm/cluster.sh down        cancel our jobs, stop the daemons, remove the state folder
#   .ci/slurm/cluster.sh status      exit 0 when every daemon runs and the node is idle/mixed
#   .ci/slurm/cluster.sh env         print `export SLURM_CONF=...` for sbatch/sacct/snakemake
#
# Two test sessions can share one cluster: the second reuses it, and whichever ends last stops it.
#
# Why this shape: the executor plugin reads job states with `sacct`, which needs slurmdbd (and
# slurmdbd a MySQL/MariaDB); without it sacct answers "accounting storage is disabled". A
# container has no systemd, so the daemons are started directly. Everything lives under
# $RTMDET_SLURM_STATE (default /tmp/rtmdet-slurm) with its own munge key/socket and private
# ports bound to 127.0.0.1, so a machine's own /etc/slurm, munged or MariaDB is never touched.
# Exit status 77: Slurm cannot run here (not root, no apt-get, no package mirror); the reason is
# the last line on stderr, and callers turn it into a skip.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${RTMDET_SLURM_STATE:-/tmp/rtmdet-slurm}"
CTLD_PORT="${RTMDET_SLURM_PORT:-16817}"      # slurmctld; slurmd, slurmdbd, MariaDB follow it
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
DB_PORT=$((CTLD_PORT + 3))
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
BINARIES=(munged slurmctld slurmd slurmdbd sbatch sacct sacctmgr sinfo mariadbd mariadb-install-db)
export PATH="$PATH:/usr/sbin:/sbin"
export SLURM_CONF="$STATE/etc/slurm.conf"
MUNGE_SOCKET="$STATE/munge/munge.socket"
DB_SOCKET="$STATE/mysql/mysqld.sock"
MARKER="$STATE/.rtmdet-slurm-ci"     # `down` removes only a folder this script made
# Where Slurm's commands look for slurm.conf when SLURM_CONF is unset (after /etc/slurm): the
# plugin's job step drops SLURM_* variables (SLURM_CONF too) before its inner `srun`, so that
# srun finds our cluster only here. (It is the path slurmd's configless mode uses.)
RUN_CONF=/run/slurm/conf/slurm.conf

log() { echo "slurm-ci: $*" >&2; }
cannot() { log "cannot run a Slurm cluster here: $*"; exit 77; }
die() { log "error: $*"; exit 1; }

# pid of a daemon from its pid file when that process is alive and is the named program
alive() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$name"* ]] || return 1
    echo "$pid"
}

# Start a daemon detached from the caller: no inherited lock fd 9 (it would hold the lock for
# the daemon's life) and no inherited stdout/stderr pipes (a caller capturing our output, like
# pytest, would wait for the daemon to exit); its early errors go to LOG.
launch() {   # launch LOG COMMAND...
    local out=$1; shift
    "$@" </dev/null >>"$out" 2>&1 9>&-
}

wait_for() {   # wait_for SECONDS WHAT COMMAND...: poll COMMAND once a second
    local secs=$1 what=$2 deadline=$((SECONDS + $1)); shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what not ready after ${secs}s (logs in $STATE/log)"
        sleep 1
    done
}

install_packages() {
    local missing=()
    for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
    ((${#missing[@]})) || return 0
    log "missing ${missing[*]}: installing ${PACKAGES[*]}"
    [[ $EUID -eq 0 ]] || cannot "not root (needs apt-get install ${PACKAGES[*]}; or run as root)"
    command -v apt-get >/dev/null || cannot "no apt-get (install ${PACKAGES[*]} by hand)"
    apt-get update -qq >"$STATE/log/apt.log" 2>&1 ||
        cannot "apt-get update failed, no package mirror reachable (see $STATE/log/apt.log)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}" >>"$STATE/log/apt.log" 2>&1 ||
        die "apt-get install ${PACKAGES[*]} failed: $(tail -n 3 "$STATE/log/apt.log")"
}

fill() {   # fill TEMPLATE OUT MODE: @NAME@ placeholders -> values
    local node
    # The CPUs, sockets/cores/threads and memory slurmd itself measures, as node `localhost`.
    node=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+/NodeName=localhost/; s/ UpTime=.*//')
    sed -e "s|@STATE@|$STATE|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" \
        -e "s|@DB_PORT@|$DB_PORT|g" -e "s|@NODE@|$node|g" \
        -e "s|@DB_PASS@|$(<"$STATE/etc/db.pass")|g" "$1" >"$2.tmp"
    chmod "$3" "$2.tmp"
    mv "$2.tmp" "$2"
}

configure() {
    mkdir -p "$STATE"/{etc,run,log,leases,spool/ctld,spool/d,munge/etc,mysql/data}
    touch "$MARKER"
    if [[ ! -s $STATE/munge/etc/munge.key ]]; then
        dd if=/dev/urandom of="$STATE/munge/etc/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$STATE/munge"
    chmod 755 "$STATE/munge"
    chmod 700 "$STATE/munge/etc"
    chmod 400 "$STATE/munge/etc/munge.key"
    chown -R mysql:mysql "$STATE/mysql"
    if [[ ! -s $STATE/etc/db.pass ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/etc/db.pass")
    fi
    : >"$STATE/etc/plugstack.conf"
    fill "$HERE/slurm.conf.in" "$STATE/etc/slurm.conf" 644
    fill "$HERE/slurmdbd.conf.in" "$STATE/etc/slurmdbd.conf" 600   # holds the DB password
    mkdir -p "$(dirname "$RUN_CONF")"
    ln -sfn "$STATE/etc/slurm.conf" "$RUN_CONF"
}

start_munge() {
    alive "$STATE/munge/munged.pid" munged >/dev/null && return 0
    launch "$STATE/log/munged.out" runuser -u munge -- munged --socket="$MUNGE_SOCKET" \
        --key-file="$STATE/munge/etc/munge.key" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/etc/munged.log" \
        --seed-file="$STATE/munge/etc/munged.seed" || die "munged did not start"
    wait_for 20 munged bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'"
}

start_mariadb() {
    alive "$STATE/mysql/mariadb.pid" mariadbd >/dev/null && return 0
    if [[ ! -d $STATE/mysql/data/mysql ]]; then
        mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$STATE/log/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    # mariadbd stays in the foreground: setsid --fork puts it in its own session, detached.
    launch "$STATE/log/mariadb.out" setsid --fork mariadbd --no-defaults --user=mysql \
        --datadir="$STATE/mysql/data" --socket="$DB_SOCKET" --pid-file="$STATE/mysql/mariadb.pid" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
        --innodb-buffer-pool-size=32M --log-error="$STATE/mysql/mariadb.log"
    wait_for 60 MariaDB mariadb-admin --no-defaults --socket="$DB_SOCKET" ping
    mariadb --no-defaults --socket="$DB_SOCKET" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1';
        ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$(<"$STATE/etc/db.pass")';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "MariaDB user setup failed"
}

start_slurmdbd() {
    alive "$STATE/run/slurmdbd.pid" slurmdbd >/dev/null && return 0
    launch "$STATE/log/slurmdbd.out" slurmdbd ||
        die "slurmdbd did not start (see $STATE/log/slurmdbd.log)"
    wait_for 60 slurmdbd sacctmgr -n list cluster
    # The cluster, an account `ci` and the running user in it: the plugin checks a given
    # account against `sacctmgr list user` (and guesses one from sacct when none is given).
    local user; user=$(id -un)
    sacctmgr -n -P list cluster format=cluster | grep -qx rtmdetci ||
        sacctmgr -i add cluster rtmdetci >/dev/null
    sacctmgr -n -P list account format=account | grep -qx ci ||
        sacctmgr -i add account ci Description="CI" Organization=rtmdet >/dev/null
    sacctmgr -n -P list assoc user="$user" account=ci format=account | grep -qx ci ||
        sacctmgr -i add user "$user" Account=ci >/dev/null
    sacctmgr -i modify user "$user" set DefaultAccount=ci >/dev/null || true
}

start_slurmctld() {
    alive "$STATE/run/slurmctld.pid" slurmctld >/dev/null && return 0
    launch "$STATE/log/slurmctld.out" slurmctld ||
        die "slurmctld did not start (see $STATE/log/slurmctld.log)"
    wait_for 60 slurmctld scontrol ping
}

start_slurmd() {
    alive "$STATE/run/slurmd.pid" slurmd >/dev/null && return 0
    launch "$STATE/log/slurmd.out" slurmd -N localhost ||
        die "slurmd did not start (see $STATE/log/slurmd.log)"
}

node_state() { sinfo -h -n localhost -o %T 2>/dev/null; }

node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; }

all_alive() {
    alive "$STATE/munge/munged.pid" munged && alive "$STATE/mysql/mariadb.pid" mariadbd &&
        alive "$STATE/run/slurmdbd.pid" slurmdbd && alive "$STATE/run/slurmctld.pid" slurmctld &&
        alive "$STATE/run/slurmd.pid" slurmd
}

up() {   # up HOLDER
    if [[ -f $MARKER ]] && all_alive >/dev/null && node_ready; then
        lease "$1"
        log "cluster already running (SLURM_CONF=$SLURM_CONF)"
        echo reused
        return 0
    fi
    [[ $(uname -s) == Linux ]] || cannot "not Linux"
    # A machine with its own Slurm: jobs' inner srun would read that cluster's slurm.conf.
    [[ ! -e /etc/slurm/slurm.conf ]] ||
        cannot "/etc/slurm/slurm.conf exists (a real cluster: run the slurm profile there," \
            "see docs/slurm.md)"
    [[ ! -e $RUN_CONF || $(readlink "$RUN_CONF") == "$STATE/etc/slurm.conf" ]] ||
        cannot "$RUN_CONF exists and is not ours (a configless slurmd runs here)"
    mkdir -p "$STATE/log"
    install_packages
    id munge >/dev/null 2>&1 && id mysql >/dev/null 2>&1 ||
        die "users munge/mysql missing (packages broken?)"
    configure
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    for ((i = 0; i < 60; i++)); do
        node_ready && break
        [[ $(node_state) =~ ^(drain|down|fail) ]] && break
        sleep 1
    done
    node_ready || die "node localhost is '$(node_state)': $(sinfo -h -R 2>&1) (see $STATE/log)"
    lease "$1"
    log "cluster up: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -n 1) (SLURM_CONF=$SLURM_CONF)"
    echo started
}

stop() {   # stop PIDFILE:NAME...: TERM them together, KILL what is left after 20 s
    local pids=() pid entry
    for entry in "$@"; do
        pid=$(alive "${entry%%:*}" "${entry##*:}") && pids+=("$pid")
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0   # true while any is alive
        sleep 0.2
    done
    log "pids ${pids[*]} ignored TERM: killing them"
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

down() {
    [[ -f $MARKER ]] || { log "no cluster state in $STATE"; return 0; }
    if alive "$STATE/run/slurmctld.pid" slurmctld >/dev/null; then
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    fi
    # slurmctld sends its last job records to slurmdbd, slurmdbd needs MariaDB; munged goes last.
    stop "$STATE/run/slurmd.pid:slurmd" "$STATE/run/slurmctld.pid:slurmctld"
    stop "$STATE/run/slurmdbd.pid:slurmdbd"
    stop "$STATE/mysql/mariadb.pid:mariadbd"
    stop "$STATE/munge/munged.pid:munged"
    [[ $(readlink "$RUN_CONF" 2>/dev/null) != "$STATE/etc/slurm.conf" ]] || rm -f "$RUN_CONF"
    rmdir /run/slurm/conf /run/slurm 2>/dev/null || true   # when empty: nobody else uses them
    rm -rf "$STATE"
    log "cluster stopped, $STATE removed"
}

# Start time of a process (field 22 of /proc/PID/stat, after the parenthesised command name):
# a lease names its holder by pid and start time, so a recycled pid does not hold the cluster.
proc_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    set -- ${stat##*) }
    echo "${20}"
}

lease() {   # lease HOLDER: record HOLDER (a pid, or `manual`)
    proc_start "$1" >"$STATE/leases/$1" 2>/dev/null || : >"$STATE/leases/$1"
}

release() {   # release HOLDER
    [[ -f $MARKER ]] || return 0
    rm -f "$STATE/leases/$1"
    local lease name started
    for lease in "$STATE"/leases/*; do
        [[ -e $lease ]] || continue
        name=$(basename "$lease")
        if [[ $name == manual ]] || { started=$(proc_start "$name") && [[ -n $started &&
                $started == "$(<"$lease")" ]]; }; then
            log "cluster kept running: still leased by $name"
            return 0
        fi
    done
    down
}

case "${1:-}" in
    up) [[ $EUID -eq 0 ]] || cannot "not root (slurmd and the daemons' setup need root)"
        exec 9>"$STATE.lock"; flock -w 600 9; up "${2:-manual}" ;;
    release) [[ -n ${2:-} ]] || { echo "usage: $0 release PID" >&2; exit 2; }
        exec 9>"$STATE.lock"; flock -w 600 9; release "$2" ;;
    down) exec 9>"$STATE.lock"; flock -w 600 9; down ;;
    status) [[ -f $MARKER ]] && all_alive >/dev/null && node_ready ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 up [PID] | release PID | down | status | env" >&2; exit 2 ;;
esac
