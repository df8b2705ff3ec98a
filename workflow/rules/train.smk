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


rule mlflow_init:
    """Create/migrate the MLflow sqlite store once, before parallel jobs race to do it."""
    output:
        touch("runs/.mlflow_ready"),
    log:
        "runs/logs/mlflow_init.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "python -c 'from rtmdet.engine.tracking import init_store; print(init_store())' > {log} 2>&1"


rule train:
    input:
        config="runs/{ablation}/{variant}/seed{seed}/resolved.yaml",
        data=train_inputs,
        mlflow=mlflow_ready,
    output:
        weights="runs/{ablation}/{variant}/seed{seed}/final.pt",
        config="runs/{ablation}/{variant}/seed{seed}/config.yaml",
        metrics="runs/{ablation}/{variant}/seed{seed}/metrics.csv",
        curve="runs/{ablation}/{variant}/seed{seed}/loss_curve.png",
    params:
        work_dir=subpath(output.weights, parent=True),
        mlflow=mlflow_flag,
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
        "OMP_NUM_THREADS={threads} rtmdet train {input.config} --work-dir {params.work_dir}"
        " {params.mlflow} > {log} 2>&1"
