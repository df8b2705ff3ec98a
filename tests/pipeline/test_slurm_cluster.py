"""The `slurm` profile against a real Slurm controller: a one-node cluster on localhost
(.ci/slurm/cluster.sh: Debian's slurm-wlm, munge, slurmdbd + MariaDB, daemons started directly),
then two kernel-size variants at smoke scale through data → train → eval → bench → complexity →
report with `snakemake --profile workflow/profiles/slurm`: every job goes through sbatch, its
state is read back with sacct, and the table comes out.

Runs wherever the cluster can be brought up (root, Linux, apt-get with a reachable mirror or
Slurm already installed) and skips with the script's reason elsewhere; `-m "not slurm"` leaves
it out on purpose. A cluster already running (a second session) is reused, and the last session
holding it stops it."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER = ROOT / ".ci/slurm/cluster.sh"
SNAKEFILE = ROOT / "workflow/Snakefile"
PROFILE = ROOT / "workflow/profiles/slurm"
CANNOT = 77          # cluster.sh: Slurm cannot run on this machine (the reason is on stderr)
VARIANTS = ["k3", "k5"]
# What goes through sbatch (the rest are localrules or target rules) and, from the smoke
# scale's resources in config/config.yaml, the memory each must have asked for.
SUBMITTED = {"prepare_coco": 1, "complexity": 1, "train": 2, "eval": 2, "bench": 2,
             "report_table": 1}

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _env(slurm_conf: str) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": slurm_conf, "MLFLOW_DISABLE_TELEMETRY": "true",
            "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """SLURM_CONF of a running one-node cluster, held for this test session."""
    if shutil.which("bash") is None:
        pytest.skip("no bash: the Slurm CI cluster script cannot run here")
    holder = str(os.getpid())
    up = subprocess.run(["bash", str(CLUSTER), "up", holder], capture_output=True, text=True,
                        timeout=900)
    if up.returncode == CANNOT:
        pytest.skip(up.stderr.strip().splitlines()[-1])
    assert up.returncode == 0, f"cluster.sh up failed:\n{up.stderr[-4000:]}"
    conf = subprocess.run(["bash", str(CLUSTER), "env"], capture_output=True, text=True,
                          check=True).stdout.strip().split("=", 1)[1]
    yield _env(conf)
    down = subprocess.run(["bash", str(CLUSTER), "release", holder], capture_output=True,
                          text=True, timeout=300)
    assert down.returncode == 0, down.stderr


def _sacct(env: dict[str, str], run_id: str) -> list[dict[str, str]]:
    fields = ["JobID", "Comment", "State", "ExitCode", "ReqMem", "AllocCPUS", "Timelimit",
              "Partition", "Account", "Elapsed"]
    r = subprocess.run(["sacct", "-X", "-P", "-n", "--name", run_id, "--starttime", "now-1day",
                        f"--format={','.join(fields)}"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [dict(zip(fields, line.split("|"))) for line in r.stdout.splitlines() if line]


def test_slurm_profile_runs_a_smoke_dag_on_a_real_cluster(cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # cwd is the checkout: the profile names config/config.yaml relative to it; -d keeps every
    # output in the scratch folder.
    smk = [str(BIN / "snakemake"), "-s", str(SNAKEFILE), "--profile", str(PROFILE), "-d", str(work),
           # The profile's paper scale and site settings, swapped for the smoke scale and this
           # cluster's partition/account; everything else (executor, retries, triggers) as is.
           "--config", "scale=smoke", "data_source=synthetic", "ablations=[kernel_size]",
           f"variants={{kernel_size: [{', '.join(VARIANTS)}]}}", "mlflow=False",
           "--default-resources", "slurm_partition=ci", "slurm_account=ci", "mem_mb=1000",
           "runtime=15",
           "--slurm-init-seconds-before-status-checks", "5", "--", "table_kernel_size"]
    r = subprocess.run(smk, cwd=ROOT, env=cluster, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)

    jobs = _sacct(cluster, run_id)
    print(f"\nsacct --name {run_id}:")
    for job in jobs:
        print("  " + " | ".join(job.values()))
    rules = [re.match(r"rule_([a-z_]+?)(?:_wildcards_.*)?$", j["Comment"]).group(1) for j in jobs]
    assert {rule: rules.count(rule) for rule in set(rules)} == SUBMITTED
    assert all(j["State"] == "COMPLETED" and j["ExitCode"] == "0:0" for j in jobs), jobs
    assert all(j["Partition"] == "ci" and j["Account"] == "ci" for j in jobs)
    # config/config.yaml scales.smoke.resources → sbatch --mem / --cpus-per-task / --time
    train = [j for j, rule in zip(jobs, rules) if rule == "train"]
    assert all(j["ReqMem"] == "4000M" and j["AllocCPUS"] == "1" and j["Timelimit"] == "01:00:00"
               for j in train), train
    evals = [j for j, rule in zip(jobs, rules) if rule == "eval"]
    assert all(j["ReqMem"] == "3000M" and j["Timelimit"] == "00:30:00" for j in evals), evals

    rows = list(csv.DictReader((work / "reports/tables/kernel_size.csv").open()))
    assert [row["variant"] for row in rows] == ["k3", "k5", "k7"]
    assert all(row["ours_AP_mean"] != "" for row in rows[:2]) and rows[2]["ours_AP_mean"] == ""
    assert "scale**: smoke" in (work / "reports/tables/kernel_size.md").read_text()
    for v in VARIANTS:
        assert (work / f"runs/kernel_size/{v}/seed0/eval.json").exists()
        assert (work / f"runs/kernel_size/{v}/bench.json").exists()
    print(f"table: {work / 'reports/tables/kernel_size.md'}")

    again = subprocess.run(smk, cwd=ROOT, env=cluster, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
