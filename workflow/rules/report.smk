# Tables, figures and the index (rtmdet report), written under runs/reports/ and published to
# reports/ by the publish_* rules (rtmdet/pipeline/publish.py: the committed reports/ must never
# satisfy a target on a fresh clone, so the report rules' own outputs live outside git).


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
        table=f"{BUILT}/tables/{{ablation}}.md",
        csv=f"{BUILT}/tables/{{ablation}}.csv",
        json=f"{BUILT}/tables/{{ablation}}.json",
        figure=f"{BUILT}/figures/{{ablation}}.png",
        curves=f"{BUILT}/figures/{{ablation}}_loss.png",
        pr=f"{BUILT}/figures/{{ablation}}_pr.png",
        forest=f"{BUILT}/figures/{{ablation}}_forest.png",
        ap_curve=f"{BUILT}/figures/{{ablation}}_ap_curve.png",
        metrics=f"{BUILT}/metrics/{{ablation}}.json",
    params:
        runs=lambda w, input: str(Path(input.complexity).parent),
        out=lambda w, output: str(Path(output.table).parents[1]),
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
        "rtmdet report table {input.experiment} --runs {params.runs} --out {params.out}"
        " --scale {params.scale} --scale-note {params.scale_note:q} --data {params.data}"
        " {params.mlflow} {params.oneoff} {params.latency} > {log} 2>&1"


rule report_timing:
    """Markdown + CSV + JSON of the cache loading-time table: paper | ours ms per 100 images of
    Mosaic and MixUp, cached and uncached, and the cache's speed-up for each."""
    input:
        timing="runs/cache_loading_time/timing.json",
        paper=str(PAPER_DIR / TIMING_TABLES["cache_loading_time"]),
    output:
        table=f"{BUILT}/tables/cache_loading_time.md",
        csv=f"{BUILT}/tables/cache_loading_time.csv",
        json=f"{BUILT}/tables/cache_loading_time.json",
    params:
        scale=config["scale"],
        out=lambda w, output: str(Path(output.table).parents[1]),
    log:
        "runs/logs/report/cache_loading_time.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet report timing cache_loading_time --timing {input.timing} --paper {input.paper}"
        " --out {params.out} --scale {params.scale} > {log} 2>&1"


rule report_index:
    """README.md linking every table and figure (and the speed-accuracy figure)."""
    input:
        expand(f"{BUILT}/tables/{{ablation}}.json", ablation=ABLATIONS + TIMING),
    output:
        index=f"{BUILT}/README.md",
        speed=f"{BUILT}/figures/speed_accuracy.png",
        metrics=f"{BUILT}/metrics/overall.json",
    params:
        tables=expand(f"{BUILT}/tables/{{ablation}}.json", ablation=ABLATIONS + TIMING),
        out=lambda w, output: str(Path(output.index).parent),
    log:
        "runs/logs/report/index.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        "rtmdet report index {params.tables} --out {params.out} > {log} 2>&1"


# Publishing: copy runs/reports/<f> to reports/<f> (local, atomic per file) and record what was
# copied in runs/reports/published/<table>.json. That manifest is an output too: Snakemake does
# not rebuild a missing input of a job whose outputs all exist, so without it the committed
# reports/ would satisfy the publish job on a fresh clone; with it (never in git) the report and
# every run it needs are built. Once published, a second invocation has nothing to do; a deleted
# reports/ file (dvc repro removes its outs first) is copied again, nothing recomputed.
# (PUBLISH and published() are in common.smk.)


rule publish_table:
    """Copy one ablation table (md, csv, json, figures, DVC metrics) into reports/."""
    wildcard_constraints:
        ablation=EXPERIMENT_RE,
    input:
        rules.report_table.output,
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
        manifest=f"{BUILT}/published/{{ablation}}.json",
    params:
        files=published,
    log:
        "runs/logs/publish/{ablation}.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        PUBLISH


rule publish_timing:
    """Copy the cache loading-time table into reports/."""
    input:
        rules.report_timing.output,
    output:
        table=report("reports/tables/cache_loading_time.md", category="Tables"),
        csv="reports/tables/cache_loading_time.csv",
        json="reports/tables/cache_loading_time.json",
        manifest=f"{BUILT}/published/cache_loading_time.json",
    params:
        files=published,
    log:
        "runs/logs/publish/cache_loading_time.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        PUBLISH


rule publish_index:
    """Copy the index, the speed-accuracy figure and the overall DVC metrics into reports/."""
    input:
        rules.report_index.output,
    output:
        index=report("reports/README.md", category="Index"),
        speed=report("reports/figures/speed_accuracy.png", category="Figures"),
        metrics="reports/metrics/overall.json",
        manifest=f"{BUILT}/published/index.json",
    params:
        files=published,
    log:
        "runs/logs/publish/index.log",
    conda:
        "../envs/rtmdet.yaml"
    shell:
        PUBLISH
