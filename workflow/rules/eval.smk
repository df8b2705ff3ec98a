# COCO evaluation of each run's EMA weights in the table's test setting (main or ablation).


rule eval:
    wildcard_constraints:
        ablation=NOT_ROTATED_RE,
    input:
        config="runs/{ablation}/{variant}/seed{seed}/config.yaml",
        weights="runs/{ablation}/{variant}/seed{seed}/final.pt",
        mlflow=mlflow_ready,
    output:
        report="runs/{ablation}/{variant}/seed{seed}/eval.json",
        pr_curve="runs/{ablation}/{variant}/seed{seed}/pr_curve.png",
    params:
        out=subpath(output.report, parent=True),
        flags=eval_flags,
    threads: res("eval", "threads")
    resources:
        mem_mb=res("eval", "mem_mb"),
        gpu=res("eval", "gpus"),
        runtime=res("eval", "runtime"),
        cpu_share=1,
    log:
        "runs/logs/eval/{ablation}/{variant}/seed{seed}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} rtmdet eval {input.config} --weights {input.weights}"
        " --out {params.out} {params.flags} > {log} 2>&1"


rule eval_dota:
    """RTMDet-R: inference on the val patches of the run's split, merge back to full images
    (class-wise rotated NMS), VOC07 11-point mAP at rotated IoU 0.5, DOTA Task 1 files."""
    wildcard_constraints:
        ablation=ROTATED_RE,
    input:
        config="runs/{ablation}/{variant}/seed{seed}/config.yaml",
        weights="runs/{ablation}/{variant}/seed{seed}/final.pt",
        val=dota_val_index,
        mlflow=mlflow_ready,
    output:
        report="runs/{ablation}/{variant}/seed{seed}/eval.json",
    params:
        out=subpath(output.report, parent=True),
        mlflow=mlflow_flag,
    threads: res("eval", "threads")
    resources:
        mem_mb=res("eval", "mem_mb"),
        gpu=res("eval", "gpus"),
        runtime=res("eval", "runtime"),
        cpu_share=1,
    log:
        "runs/logs/eval/{ablation}/{variant}/seed{seed}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} rtmdet eval {input.config} --weights {input.weights}"
        " --patch-index {input.val} --out {params.out} {params.mlflow} > {log} 2>&1"
