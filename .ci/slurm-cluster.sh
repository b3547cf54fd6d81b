#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for the `slurm` test tier.
#
# Installs Debian's slurm-wlm and munge when they are missing, writes
# /etc/slurm/slurm.conf for this host, starts munged, slurmctld and slurmd,
# and waits until the node is idle. Run as root on a throwaway machine (CI).
# The controller and the node are addressed as 127.0.0.1 and no other host
# is named. NOTE: Slurm 22.05 has no setting that limits its listening
# sockets, so slurmctld (6817) and slurmd (6818) listen on all interfaces;
# use this script only on a machine whose firewall closes those ports.
#
# Layout: proctrack/linuxproc and task/none (no cgroups), select/cons_tres,
# no accounting database. Logs: /var/log/slurm/{slurmctld,slurmd}.log.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "error: $0 must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge
fi

host=$(hostname -s)
cpus=$(nproc)
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge

# munge authenticates every Slurm message; Debian's package normally creates the key.
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key /run/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -u munge -x munged >/dev/null; then
    runuser -u munge -- munged
fi

# KillWait: seconds between SIGTERM and SIGKILL when a job is cancelled or
# requeued; Lightning stops at the next batch after SIGTERM, well within it.
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=divrec-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
KillWait=10
MinJobAge=3600
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 NodeHostname=${host} CPUs=${cpus} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF

if ! pgrep -x slurmctld >/dev/null; then
    slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
    slurmd
fi

# The node registers within a few seconds; 60 s allows for a loaded machine.
for _ in $(seq 60); do
    state=$(sinfo --noheader --nodes="${host}" --format=%T 2>/dev/null || true)
    if [[ $state == idle ]]; then
        echo "slurm: node ${host} is idle"
        exit 0
    fi
    sleep 1
done
echo "error: the Slurm node ${host} did not become idle within 60 s (state: '${state:-none}')" >&2
echo "--- /var/log/slurm/slurmctld.log" >&2
tail -n 30 /var/log/slurm/slurmctld.log >&2 || true
echo "--- /var/log/slurm/slurmd.log" >&2
tail -n 30 /var/log/slurm/slurmd.log >&2 || true
exit 1
