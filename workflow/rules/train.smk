# One training run per (ablation, variant, seed). The resolved config is the contract between
# experiments/ and the trainer: written once per config change (params trigger), then trained.


rule resolve_config:
    """Write the validated config of one run from its base preset + overrides (the params)."""
    output:
        "runs/{ablation}/{variant}/seed{seed}/resolved.yaml",
    params:
        spec=run_spec_of,
    log:
        "runs/logs/resolve/{ablation}/{variant}/seed{seed}.log",
    conda:
        "../envs/rtmdet.yaml"
    script:
        "../scripts/resolve_config.py"


rule mlflow_setup:
    """Create/migrate the MLflow store and every selected ablation's experiment (description
    from its YAML, training-runs view tag) and parent run, once, before parallel jobs log into
    them. Its marker is an ancient() input of the jobs: re-running it (another selection of
    ablations, an edited description) never retrains anything."""
    input:
        experiments=[EXPERIMENTS[a].path for a in ABLATIONS],
    output:
        "runs/.mlflow_ready",
    params:
        ablations=ABLATIONS,
    log:
        "runs/logs/mlflow_setup.log",
    conda:
        "../envs/rtmdet.yaml"
    script:
        "../scripts/mlflow_setup.py"


rule train:
    """Train one run, or, when the same training already belongs to another table (proxy scale,
    rtmdet.pipeline.shared), copy that run's outputs with this run's own config.yaml.
    --auto-resume: a job killed earlier continues from its own last.pt (same config), exactly
    as if uninterrupted; a last.pt of another config is started over."""
    input:
        config="runs/{ablation}/{variant}/seed{seed}/resolved.yaml",
        data=train_inputs,
        mlflow=mlflow_ready,
        shared=shared_inputs,
    output:
        weights="runs/{ablation}/{variant}/seed{seed}/final.pt",
        config="runs/{ablation}/{variant}/seed{seed}/config.yaml",
        metrics="runs/{ablation}/{variant}/seed{seed}/metrics.csv",
        curve="runs/{ablation}/{variant}/seed{seed}/loss_curve.png",
    params:
        work_dir=subpath(output.weights, parent=True),
        mlflow=mlflow_flag,
        shared=lambda w: shared_source(w) or "",
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        gpu=res("train", "gpus"),
        runtime=res("train", "runtime"),
        cpu_share=1,
    log:
        "runs/logs/train/{ablation}/{variant}/seed{seed}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "if [ -n '{params.shared}' ]; then"
        " python -m rtmdet.pipeline.shared {params.shared} {params.work_dir} {input.config} > {log} 2>&1;"
        " else OMP_NUM_THREADS={threads} rtmdet train {input.config} --work-dir {params.work_dir} --auto-resume"
        " {params.mlflow} > {log} 2>&1; fi"
