# Shared helpers: the list of ablations, the scale and the data source. Everything comes from
# experiments/*.yaml through rtmdet.pipeline.{spec,resolve,dvc}, the same modules DVC's params.yaml
# is generated and checked with, so Snakemake and DVC cannot disagree on what an ablation is.
import os
import sys
from pathlib import Path

# The repository root (workflow.basedir is workflow/, where the Snakefile lives). The package is
# imported as installed (pip install -e .), like every other user of it.
ROOT = Path(workflow.basedir).parent
from rtmdet.pipeline.dvc import load_oneoff  # noqa: E402
from rtmdet.pipeline.resolve import (Scale, model_type, not_run_reason, resolve,  # noqa: E402
                                     resolve_to_file, run_spec, seeds_for)
from rtmdet.pipeline.spec import list_experiments  # noqa: E402
from rtmdet.pipeline.shared import canonical_runs  # noqa: E402
from rtmdet.pipeline.latency_plan import has_latency_claim  # noqa: E402
from rtmdet.pipeline.report_timing import TIMING_TABLES  # noqa: E402

# params.yaml's `oneoff` section (`dvc exp run -S ...`) may add one extra variant to an ablation.
ONEOFF = load_oneoff(ROOT / "params.yaml")
EXPERIMENTS = ONEOFF.apply(list_experiments(ROOT / "experiments"))
ABLATIONS = [a for a in EXPERIMENTS if not config["ablations"] or a in config["ablations"]]
# Timing tables (cache loading time): measured by `rtmdet bench data`, no training; selected by
# `ablations` like the others.
TIMING = [t for t in TIMING_TABLES if not config["ablations"] or t in config["ablations"]]
unknown = sorted(set(config["ablations"]) - set(EXPERIMENTS) - set(TIMING_TABLES))
if unknown:
    raise ValueError(f"config ablations: unknown {unknown}; have "
                     f"{sorted(EXPERIMENTS) + sorted(TIMING_TABLES)}")
EXPERIMENT_RE = "|".join(EXPERIMENTS)
# Where the report rules write; the publish_* rules copy from here to reports/ (the committed
# copy, which must never look like a finished target: rtmdet/pipeline/publish.py).
BUILT = "runs/reports"
PAPER_DIR = ROOT / "paper"     # the paper's numbers, whatever the working dir
SCALE = Scale.from_dict(config["scale"], config["scales"][config["scale"]])
BENCH = config["scales"][config["scale"]]["bench"]
# Cache loading-time table: how many images/samples at this scale, and what pipeline it times.
DATA_BENCH = {"images": 60, "n": 50, "warmup": 20, "repeats": 1,
              **config["scales"][config["scale"]].get("data_bench", {})}
DATA_BENCH_RUN = {"preset": "rtmdet-l", "size": 640, "cv2_threads": 1,
                  **config.get("data_bench", {})}
# Paper-scale latency (rtmdet bench paper-latency): the tables whose paper gives latency, their
# distinct paper-scale architectures built once, compared pairs timed ABBA; rounds < 2 = off.
PAPER_LATENCY = {"backend": "onnxruntime", "device": "cpu", "threads": 1, "rounds": 5, "warmup": 1,
                 **config.get("paper_latency", {}),
                 **config["scales"][config["scale"]].get("paper_latency", {})}
LATENCY_TABLES = ([a for a in ABLATIONS if has_latency_claim(EXPERIMENTS[a])]
                  if PAPER_LATENCY["rounds"] >= 2 else [])
DOTA = config["scales"][config["scale"]].get("dota", {"patch_size": 1024,
                                                      "gap": {"ss": 256, "ms": 500}})
# RTMDet-R tables: DOTA patches in, patch inference + merge + VOC07 mAP out (rule eval_dota).
ROTATED = [a for a, e in EXPERIMENTS.items() if model_type(e, e.baseline) == "rotated"]
NOT_ROTATED_RE = f"(?!(?:{'|'.join(ROTATED)})(?:/|$))[^/]+" if ROTATED else "[^/]+"
ROTATED_RE = "|".join(ROTATED) if ROTATED else "(?!x)x"
REAL_COCO = Path("data/coco/annotations/instances_val2017.json")
# auto: the scale's own data (the proxy task for the proxy scale), else real COCO when present,
# else the embedded synthetic set.
DATA_SOURCE = ((SCALE.data_source or ("coco" if REAL_COCO.exists() else "synthetic"))
               if config["data_source"] == "auto" else config["data_source"])
# Jobs use the `rtmdet` CLI and python of the environment Snakemake runs in (e.g. .venv/bin),
# activated or not.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def variants_of(ablation):
    """The variants that run: those chosen (config `variants`), less those that cannot run at
    this scale or lack a file they need (rtmdet.pipeline.resolve.not_run_reason; the table row
    says why)."""
    chosen = config["variants"].get(ablation) or list(EXPERIMENTS[ablation].variants)
    return [v for v in EXPERIMENTS[ablation].variants if v in chosen
            and not_run_reason(EXPERIMENTS[ablation], v, config["scale"], ROOT) is None]


def seeds_of(ablation):
    return seeds_for(EXPERIMENTS[ablation], SCALE)


def run_spec_of(wildcards):
    """Base preset + dotted overrides of one run (the rerun trigger of resolve_config): editing a
    variant or the scale re-resolves and retrains exactly the runs it changes; a new config field
    or default in rtmdet/ retrains nothing (see the rerun policy in workflow/Snakefile)."""
    return run_spec(EXPERIMENTS[wildcards.ablation], wildcards.variant, int(wildcards.seed), SCALE,
                    DATA_SOURCE)


def paper_models(wildcards):
    """Model section of every variant at paper scale with COCO's 80 classes, so our params and
    FLOPs sit next to the paper's whatever data and scale the runs use."""
    exp = EXPERIMENTS[wildcards.ablation]
    return {v: resolve(exp, v, 0, Scale("paper"), "coco").model.model_dump(mode="json")
            for v in variants_of(wildcards.ablation)}


def run_files(ablation, name):
    return [f"runs/{ablation}/{v}/seed{s}/{name}"
            for v in variants_of(ablation) for s in seeds_of(ablation)]


def mlflow_flag(wildcards=None):
    return "--mlflow" if config["mlflow"] else ""


def mlflow_ready(wildcards=None):
    """The store and experiments exist before a job logs (made by mlflow_setup); ancient(): a
    re-run of the setup does not make every run look out of date."""
    return [ancient("runs/.mlflow_ready")] if config["mlflow"] else []


def mlflow_bench(wildcards):
    """With MLflow, a variant's latency goes into the run of each of its seeds, which the train
    jobs create: the benchmark waits for them and names their folders."""
    if not config["mlflow"]:
        return {"inputs": [], "flags": ""}
    dirs = [f"runs/{wildcards.ablation}/{wildcards.variant}/seed{s}"
            for s in seeds_of(wildcards.ablation)]
    return {"inputs": [f"{d}/final.pt" for d in dirs],
            "flags": "--mlflow " + " ".join(f"--mlflow-run-dir {d}" for d in dirs)}


def res(job, key):
    """Per-job resources of the current scale (threads, mem_mb, gpus, runtime in minutes)."""
    return config["scales"][config["scale"]]["resources"][job][key]


def run_config(wildcards):
    return resolve(EXPERIMENTS[wildcards.ablation], wildcards.variant, int(wildcards.seed), SCALE,
                   DATA_SOURCE)


def train_inputs(wildcards):
    """COCO runs need the prepared COCO manifest; RTMDet-R runs the train patches of their split
    (data.root = data/dota_split/<mode>); a run with train.init_from under runs/ (RTMDet-R from
    a COCO RTMDet) needs that run's checkpoint first."""
    cfg = run_config(wildcards)
    data = ([f"{cfg.data.root}/train/index.json"] if cfg.data.format == "dota"
            else ["data/prepared/coco.json"])
    init = cfg.train.init_from
    return data + ([init] if init and Path(init).parts[0] == "runs" else [])


def dota_val_index(wildcards):
    return f"{run_config(wildcards).data.root}/val/index.json"


def report_data(wildcards):
    """What the table says it was trained on."""
    if wildcards.ablation in ROTATED:
        return "dota" if dota_root(wildcards) == "data/dota" else "synthetic_dota"
    return DATA_SOURCE


def paper_latency_json(wildcards):
    """The table's paper-scale latency input (none when off or the paper gives no latency)."""
    return ["runs/paper_latency/latency.json"] if wildcards.ablation in LATENCY_TABLES else []


def paper_latency_flag(wildcards, input):
    return f"--paper-latency {input.paper_latency}" if input.paper_latency else ""


def oneoff_flag(wildcards):
    """The report must list the one-off variant that Snakemake ran."""
    return "--oneoff params.yaml" if ONEOFF.ablation == wildcards.ablation else ""


def dota_root(wildcards):
    """Real DOTA (data/dota/{train,val}/{images,labelTxt}) when present, else the synthetic set."""
    return "data/dota" if Path("data/dota/train/images").exists() else "data/synth_dota"


def eval_flags(wildcards):
    """The table's test setting: --fast is the paper's ablation setting (score 0.05, top 100)."""
    # A run folder holds one table's test setting: keep eval.json / pr_curve.png for either.
    fast = "--fast --suffix=" if EXPERIMENTS[wildcards.ablation].test_setting == "ablation" else ""
    return f"{fast} {mlflow_flag()}".strip()


def _run_folder(ablation, variant, seed):
    return f"runs/{ablation}/{variant}/seed{seed}"


# Trainings shared between tables (rtmdet.pipeline.shared): at a scale with `share_trainings`,
# a run identical to an earlier one (experiment order) copies its outputs instead of training.
SHARED = (canonical_runs(
    (_run_folder(a, v, s), resolve(EXPERIMENTS[a], v, s, SCALE, DATA_SOURCE))
    for a in ABLATIONS for v in variants_of(a) for s in seeds_of(a))
    if config["scales"][config["scale"]].get("share_trainings", False) else {})


def shared_source(wildcards):
    """The canonical run folder this run copies, or None when it trains itself."""
    return SHARED.get(_run_folder(wildcards.ablation, wildcards.variant, wildcards.seed))


def shared_inputs(wildcards):
    src = shared_source(wildcards)
    return [f"{src}/final.pt"] if src else []


# The publish rules' command (rules/report.smk): runs/reports/<f> -> reports/<f> + manifest.
PUBLISH = (f"python -m rtmdet.pipeline.publish --src {BUILT} --dst reports"
           " --manifest {output.manifest} {params.files} > {log} 2>&1")


def published(wildcards, output):
    """The publish job's reports/ files (every output but the manifest)."""
    return [f for f in output if f != output.manifest]
