# Latency of each variant at the run scale (weights do not change latency, so the first seed's
# config is benchmarked with random weights), params/FLOPs of every variant at paper scale, and
# the Mosaic/MixUp step times with and without the caches (the cache loading-time table).
# cpu_share: train/eval jobs take 1, a benchmark 2; profiles cap the total at 2 (--resources
# cpu_share=2), so a latency is never measured while another job competes for the CPU.


rule bench:
    input:
        config=lambda w: f"runs/{w.ablation}/{w.variant}/seed{seeds_of(w.ablation)[0]}/resolved.yaml",
        mlflow=mlflow_ready,
        runs=lambda w: mlflow_bench(w)["inputs"],
    output:
        "runs/{ablation}/{variant}/bench.json",
    params:
        backend=config["bench"]["backend"],
        device=config["bench"]["device"],
        size=BENCH["size"],
        runs=BENCH["runs"],
        warmup=BENCH["warmup"],
        work_dir=lambda w: f"runs/{w.ablation}/{w.variant}/bench",
        mlflow=lambda w: mlflow_bench(w)["flags"],
    threads: config["bench"]["threads"]
    resources:
        mem_mb=res("bench", "mem_mb"),
        gpu=res("bench", "gpus"),
        runtime=res("bench", "runtime"),
        cpu_share=2,
    log:
        "runs/logs/bench/{ablation}/{variant}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet bench latency {input.config} --backend {params.backend} --device {params.device}"
        " --size {params.size} --runs {params.runs} --warmup {params.warmup} --threads {threads}"
        " --work-dir {params.work_dir} --out {output} {params.mlflow} > {log} 2>&1"


rule paper_latency:
    """Latency of every distinct paper-scale architecture of the tables whose paper gives latency
    (untrained, 640x640, bs 1, onnxruntime CPU): each round times every compared pair ABBA;
    alone on the CPU. Cost on the 2-core VM (shared): ~200 s setup (20 ONNX exports) + ~110 s
    per round (18 pairs): ~12 min at the default 5 rounds, 1 thread; ~6.3 GB resident."""
    input:
        experiments=lambda w: [str(EXPERIMENTS[a].path) for a in LATENCY_TABLES],
    output:
        "runs/paper_latency/latency.json",
    params:
        tables=LATENCY_TABLES,
        rounds=PAPER_LATENCY["rounds"],
        warmup=PAPER_LATENCY["warmup"],
        backend=PAPER_LATENCY["backend"],
        device=PAPER_LATENCY["device"],
    threads: PAPER_LATENCY["threads"]
    resources:
        mem_mb=8000,
        runtime=90,
        cpu_share=2,
    log:
        "runs/logs/bench/paper_latency.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet bench paper-latency {input.experiments} --rounds {params.rounds}"
        " --warmup {params.warmup} --backend {params.backend}"
        " --device {params.device} --threads {threads} --work-dir runs/paper_latency/onnx"
        " --out {output} > {log} 2>&1"


rule complexity:
    """Params and FLOPs (paper convention) of every variant at paper scale, 640x640."""
    output:
        "runs/{ablation}/complexity.json",
    params:
        models=paper_models,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        "runs/logs/complexity/{ablation}.log",
    conda:
        "../envs/rtmdet.yaml"
    script:
        "../scripts/complexity.py"


rule time_cache_loading:
    """Mosaic / MixUp step times, cached vs uncached, with the images each step loads
    (`rtmdet bench data`: one process, torch 1 thread); alone on the CPU (cpu_share 2)."""
    input:
        images=f"data/bench_coco_480x640_n{DATA_BENCH['images']}",
    output:
        "runs/cache_loading_time/timing.json",
    params:
        preset=DATA_BENCH_RUN["preset"],
        size=DATA_BENCH_RUN["size"],
        cv2_threads=DATA_BENCH_RUN["cv2_threads"],
        n=DATA_BENCH["n"],
        warmup=DATA_BENCH["warmup"],
        repeats=DATA_BENCH["repeats"],
    threads: 1
    resources:
        mem_mb=res("bench", "mem_mb"),
        runtime=res("bench", "runtime"),
        cpu_share=2,
    log:
        "runs/logs/bench/cache_loading_time.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet bench data --root {input.images} --preset {params.preset} --size {params.size}"
        " --n {params.n} --warmup {params.warmup} --repeats {params.repeats}"
        " --cv2-threads {params.cv2_threads} --out {output} > {log} 2>&1"
