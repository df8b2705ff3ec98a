# Data: COCO-format detection data for the ablations, DOTA patches for RTMDet-R, fixed-shape
# JPEGs for the cache loading-time table.


rule prepare_coco:
    """data/coco when the real set is there (checked, not copied), else the generated proxy task
    (proxy scale) or the embedded synthetic set; writes a small manifest the training rules
    depend on."""
    priority: 50  # data first: every training waits for it
    output:
        "data/prepared/coco.json",
    params:
        source=DATA_SOURCE,
        synthetic=config["synthetic"],
        proxy=config["proxy"],
    threads: 2
    log:
        "runs/logs/data/prepare_coco.log",
    conda:
        "../envs/rtmdet.yaml"
    script:
        "../scripts/prepare_coco.py"


rule synth_dota:
    """Synthetic DOTA-format scenes, used when data/dota is absent."""
    priority: 50  # data first: every training waits for it
    output:
        directory("data/synth_dota"),
    log:
        "runs/logs/data/synth_dota.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet data synth-dota --root {output} > {log} 2>&1"


rule prepare_dota:
    """Single-scale (rate 1, gap 256) or multi-scale (rates 0.5/1/1.5, gap 500) 1024 patches
    (SPEC §10) of the train or val split."""
    input:
        dota_root,
    priority: 50  # data first: every training waits for it
    output:
        "data/dota_split/{mode}/{split}/index.json",
    wildcard_constraints:
        mode="ss|ms",
        split="train|val",
    params:
        out=subpath(output[0], parent=True),
        patch_size=DOTA["patch_size"],
        gap=lambda w: DOTA["gap"][w.mode],
    threads: 2
    log:
        "runs/logs/data/prepare_dota_{mode}_{split}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet data split-dota --images {input}/{wildcards.split}/images"
        " --labels {input}/{wildcards.split}/labelTxt --out {params.out}"
        " --mode {wildcards.mode} --patch-size {params.patch_size} --gap {params.gap}"
        " --workers {threads} > {log} 2>&1"


rule dota_patches:
    """Target: every DOTA patch set."""
    input:
        expand("data/dota_split/{mode}/{split}/index.json", mode=["ss", "ms"], split=["train", "val"]),


rule synth_bench_images:
    """Synthetic COCO-format JPEGs at a fixed 480x640 (COCO's most common shape) for the cache
    loading-time table; one folder per image count, so the scales do not overwrite each other."""
    output:
        directory("data/bench_coco_480x640_n{images}"),
    wildcard_constraints:
        images=r"\d+",
    log:
        "runs/logs/data/bench_coco_480x640_n{images}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet data synth-coco --root {output} --train {wildcards.images} --val 0"
        " --shape 480 640 > {log} 2>&1"
