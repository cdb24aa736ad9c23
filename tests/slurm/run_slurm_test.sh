#!/usr/bin/env bash
# Prove the cluster path on a real SLURM: install and start a single-node SLURM on this machine from Debian's
# packages (slurmctld, slurmd, munge, and slurmdbd on a local MariaDB, which `sacct` needs), submit the smoke
# study with `snakemake --profile profiles/slurm` through snakemake-executor-plugin-slurm, check that every
# job ran as a SLURM job (job ids in the logs, sacct records) and that its tables equal a local run of the
# same config; then preempt a running training job (`scontrol requeue`) and check that SLURM requeued it, that
# the rerun resumed from its saved state and that its outputs are bitwise those of an uninterrupted local run;
# then stop everything it started.
#
#   sudo bash tests/slurm/run_slurm_test.sh [WORKDIR]
#   sudo SLURM_TEST_PARTS=preemption bash tests/slurm/run_slurm_test.sh [WORKDIR]   # the preemption check only
#
# Needs root, apt (Debian 12 / Ubuntu) and the project installed (pip install -e ".[test,slurm]").
# It changes the machine (packages, /etc/slurm, /etc/munge): run it on a throwaway machine or container.
# Exit status 0 only if every check passed. About 10 minutes on 2 cores, most of it the two smoke runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/robustgen-slurm.XXXXXX)}"
mkdir -p "$WORK"
LOG="$WORK/daemons"
mkdir -p "$LOG"
say() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root (it installs and starts SLURM daemons)"; exit 2; }

say "installing SLURM, munge and MariaDB from Debian's packages"
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client slurmdbd munge \
    mariadb-server >"$LOG/apt.log" 2>&1
fi
slurmctld -V

PIDS=()
cleanup() {
  say "stopping what this test started"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

HOST="$(hostname -s)"
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

say "munge"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
runuser -u munge -- /usr/sbin/munged --force
PIDS+=("$(cat /run/munge/munged.pid)")
munge -n | unmunge >/dev/null && echo "munge works"

say "MariaDB for the accounting database"
install -d -o mysql -g mysql /run/mysqld
/usr/sbin/mariadbd --user=mysql --skip-networking=0 --bind-address=127.0.0.1 >"$LOG/mariadb.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'robustgen';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

say "slurmdbd, slurmctld, slurmd"
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=robustgen
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
chmod 600 /etc/slurm/slurmdbd.conf
NODE="$(slurmd -C | head -1 | sed -E 's/RealMemory=[0-9]+/RealMemory='"$MEM_MB"'/')"
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=robustgen
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MinJobAge=600
ReturnToService=2
MpiDefault=none
$NODE State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
slurmdbd -D >"$LOG/slurmdbd.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -i add cluster robustgen >/dev/null 2>&1 || true
sacctmgr -i add account robustgen Cluster=robustgen >/dev/null 2>&1 || true
sacctmgr -i add user root Account=robustgen >/dev/null 2>&1 || true
slurmctld -D >"$LOG/slurmctld.out" 2>&1 &
PIDS+=("$!")
slurmd -D >"$LOG/slurmd.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break; sleep 1; done
sinfo
sinfo -h -o %t | grep -qE '^(idle|mix|alloc)' || { echo "the node did not come up"; tail -20 /var/log/slurm/*.log; exit 1; }

PARTS="${SLURM_TEST_PARTS:-study preemption}"  # SLURM_TEST_PARTS=preemption: only the preemption check
if [[ " $PARTS " == *" study "* ]]; then
say "the smoke study through SLURM"
# A group job asks for the CPUs and memory of its components that run side by side: two capacity networks
# fit this 2-CPU node.
rm -rf "$WORK/slurm" "$WORK/local" && mkdir -p "$WORK/slurm" "$WORK/local"
cp "$ROOT/config.yaml" "$WORK/slurm/" && cp "$ROOT/config.yaml" "$WORK/local/"
start=$(date +%s)
(cd "$ROOT" && snakemake -s Snakefile --directory "$WORK/slurm" --profile profiles/slurm \
  --configfile tests/smoke.yaml --default-resources slurm_account=robustgen slurm_partition=main \
  --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs --jobs 4 \
  --group-components capacity=2) 2>&1 | tee "$WORK/slurm.log"
echo "SLURM run: $(( $(date +%s) - start )) s"

say "the same config locally"
(cd "$ROOT" && snakemake -s Snakefile --directory "$WORK/local" --cores 2 --configfile tests/smoke.yaml) \
  >"$WORK/local.log" 2>&1

say "checks"
python3 - "$WORK" <<'EOF'
import re, subprocess, sys
from pathlib import Path

import pandas as pd

work = Path(sys.argv[1])
log = (work / "slurm.log").read_text()
submitted = dict(re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log))
print(f"snakemake submitted {len(submitted)} SLURM jobs: ids {sorted(map(int, submitted.values()))}")
assert submitted, "no job was submitted to SLURM"
records = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(submitted.values()),
                          "-o", "JobID,JobName,Comment,State,ExitCode,Elapsed,NCPUS,ReqMem"],
                         capture_output=True, text=True, check=True).stdout
rows = [line.split("|") for line in records.splitlines() if line]
print("sacct -X -j <those ids> -o JobID,JobName,Comment,State,ExitCode,Elapsed,NCPUS,ReqMem:")
for row in rows:
    print("  " + " | ".join(row))
assert {r[0] for r in rows} == set(submitted.values()), "sacct does not know every submitted job"
assert all(r[3] == "COMPLETED" and r[4] == "0:0" for r in rows), "a SLURM job did not complete"
slurm_logs = {p.stem for p in (work / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log")}
assert set(submitted.values()) <= slurm_logs, "a job has no SLURM log named by its job id"
print(f"every job's SLURM log is there ({len(slurm_logs)} logs named by job id)")
for table in sorted((work / "local" / "results" / "tables").glob("*.csv")):
    a = pd.read_csv(table)
    b = pd.read_csv(work / "slurm" / "results" / "tables" / table.name)
    timing = [c for c in a.columns if "seconds" in c]
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    print(f"  {table.name}: {len(a)} rows, equal to the local run" + (f" (but {timing})" if timing else ""))
EOF
fi

if [[ " $PARTS " == *" preemption "* ]]; then
say "preemption: requeue a running training job"
# One grokking run of the smoke grid, trained far past generalisation (no early stop) so that it is still
# running when it is requeued, saving its state every 500 steps.
LONG='grokking={max_steps: 20000, stop: {test_acc: 1, steps_after: 0}, state_every: 500}'
RUN=results/grokking/mnist_embedded/alpha8_wd0.1_seed0
rm -rf "$WORK/preempt" "$WORK/preempt_local" && mkdir -p "$WORK/preempt" "$WORK/preempt_local"
cp "$ROOT/config.yaml" "$WORK/preempt/" && cp "$ROOT/config.yaml" "$WORK/preempt_local/"
(cd "$ROOT" && snakemake -s Snakefile --directory "$WORK/preempt" --profile profiles/slurm \
  --configfile tests/smoke.yaml --config "$LONG" --default-resources slurm_account=robustgen slurm_partition=main \
  --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs --jobs 2 "$RUN/run.json") \
  >"$WORK/preempt.log" 2>&1 &
SNAKEMAKE=$!
JOB=""
for _ in $(seq 600); do
  JOB="$(squeue -h -t RUNNING -o '%i %k' | awk '/train_grokking/ {print $1}' | head -1)"
  [ -n "$JOB" ] && [ -s "$WORK/preempt/$RUN/in_progress/state.pt" ] && break
  sleep 0.5
done
[ -n "$JOB" ] || { echo "no running train_grokking job to preempt"; cat "$WORK/preempt.log"; exit 1; }
echo "SLURM job $JOB is RUNNING train_grokking and has saved its state: scontrol requeue $JOB"
scontrol requeue "$JOB"
wait "$SNAKEMAKE" || { echo "the preempted study failed"; tail -40 "$WORK/preempt.log"; exit 1; }
echo "sacct -D -X -j $JOB (every attempt of the job):"
sacct -D -X -P -j "$JOB" -o JobID,State,ExitCode,Start,End,Elapsed | tee "$WORK/preempt_sacct.txt"
scontrol show job "$JOB" | grep -oE 'Requeue=[0-9]+ Restarts=[0-9]+' || true

say "the same long run locally, uninterrupted"
(cd "$ROOT" && snakemake -s Snakefile "$RUN/run.json" --directory "$WORK/preempt_local" --cores 1 \
  --configfile tests/smoke.yaml --config "$LONG") >"$WORK/preempt_local.log" 2>&1

say "checks: requeued, resumed, bitwise equal"
python3 - "$WORK" "$RUN" <<'EOF'
import json, sys
from pathlib import Path

import torch

work, run = Path(sys.argv[1]), sys.argv[2]
attempts = [line.split("|") for line in (work / "preempt_sacct.txt").read_text().splitlines()[1:] if line]
states = [a[1] for a in attempts]
print(f"sacct states of the job's attempts: {states}")
assert "REQUEUED" in states[:-1], "SLURM did not requeue the job"
assert states[-1] == "COMPLETED", "the requeued job did not complete"
preempted, local = work / "preempt" / run, work / "preempt_local" / run
resumed = json.loads((preempted / "run.json").read_text())["resumed_from"]
print(f"run.json resumed_from (steps at which a saved state was picked up): {resumed}")
assert resumed, "the requeued job did not pick up its saved state"
assert not json.loads((local / "run.json").read_text())["resumed_from"]
assert (preempted / "metrics.csv").read_bytes() == (local / "metrics.csv").read_bytes(), "metrics differ"
snapshots = sorted(p.name for p in (local / "snapshots").glob("*.pt"))
assert snapshots == sorted(p.name for p in (preempted / "snapshots").glob("*.pt")), "snapshot steps differ"
for name in snapshots:
    a = torch.load(local / "snapshots" / name, weights_only=True)
    b = torch.load(preempted / "snapshots" / name, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), name
    assert a["metrics"] == b["metrics"], name
print(f"metrics.csv and all {len(snapshots)} snapshots bitwise equal to the uninterrupted local run")
EOF
fi
echo "SLURM TEST PASSED"
