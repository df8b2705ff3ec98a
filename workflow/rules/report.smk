# Tables, figures and the index under reports/ (rtmdet report).


rule report_table:
    """Markdown + CSV + JSON table and PNG figures of one ablation: paper | ours mean [95 % CI] |
    paired Δ vs the reference [95 % CI] | verdict, with params/FLOPs at paper scale and latency
    with the backend used; the flat DVC metrics; fails when two seeds collide."""
    wildcard_constraints:
        ablation=EXPERIMENT_RE,
    input:
        experiment=lambda w: EXPERIMENTS[w.ablation].path,
        evals=lambda w: run_files(w.ablation, "eval.json"),
        configs=lambda w: run_files(w.ablation, "config.yaml"),
        metrics=lambda w: run_files(w.ablation, "metrics.csv"),
        # run-scale latency: off (runs: 0) at the proxy scale, whose tables use paper_latency
        bench=lambda w: ([f"runs/{w.ablation}/{v}/bench.json" for v in variants_of(w.ablation)]
                         if BENCH["runs"] > 0 else []),
        complexity="runs/{ablation}/complexity.json",
        paper_latency=paper_latency_json,
    output:
        table=report("reports/tables/{ablation}.md", category="Tables"),
        csv="reports/tables/{ablation}.csv",
        json="reports/tables/{ablation}.json",
        figure=report("reports/figures/{ablation}.png", category="Figures"),
        curves=report("reports/figures/{ablation}_loss.png", category="Training curves"),
        pr=report("reports/figures/{ablation}_pr.png", category="PR curves"),
        forest=report("reports/figures/{ablation}_forest.png", category="Figures"),
        ap_curve=report("reports/figures/{ablation}_ap_curve.png", category="Training curves"),
        metrics="reports/metrics/{ablation}.json",
    params:
        runs=lambda w, input: str(Path(input.complexity).parent),
        scale=config["scale"],
        scale_note=config["scales"][config["scale"]]["description"],
        data=report_data,
        mlflow=mlflow_flag,
        oneoff=oneoff_flag,
        latency=paper_latency_flag,
    log:
        "runs/logs/report/{ablation}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet report table {input.experiment} --runs {params.runs} --out reports"
        " --scale {params.scale} --scale-note {params.scale_note:q} --data {params.data}"
        " {params.mlflow} {params.oneoff} {params.latency} > {log} 2>&1"


rule report_timing:
    """Markdown + CSV + JSON of the cache loading-time table: paper | ours ms per 100 images of
    Mosaic and MixUp, cached and uncached, and the cache's speed-up for each."""
    input:
        timing="runs/cache_loading_time/timing.json",
        paper=str(PAPER_DIR / TIMING_TABLES["cache_loading_time"]),
    output:
        table=report("reports/tables/cache_loading_time.md", category="Tables"),
        csv="reports/tables/cache_loading_time.csv",
        json="reports/tables/cache_loading_time.json",
    params:
        scale=config["scale"],
    log:
        "runs/logs/report/cache_loading_time.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet report timing cache_loading_time --timing {input.timing} --paper {input.paper}"
        " --out reports --scale {params.scale} > {log} 2>&1"


rule report_index:
    """reports/README.md linking every table and figure (and the speed-accuracy figure)."""
    input:
        expand("reports/tables/{ablation}.json", ablation=ABLATIONS + TIMING),
    output:
        index=report("reports/README.md", category="Index"),
        speed=report("reports/figures/speed_accuracy.png", category="Figures"),
        metrics="reports/metrics/overall.json",
    params:
        tables=expand("reports/tables/{ablation}.json", ablation=ABLATIONS + TIMING),
    log:
        "runs/logs/report/index.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet report index {params.tables} --out reports > {log} 2>&1"
