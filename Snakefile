# The ablation pipeline: experiments/*.yaml -> data -> train -> eval/bench -> reports/.
#
#   snakemake --profile workflow/profiles/smoke ablation_tables   # minutes on a laptop CPU
#   snakemake --profile workflow/profiles/paper ablation_tables   # the paper's schedules, 3 seeds
#   snakemake --profile workflow/profiles/slurm ablation_tables   # same DAG on a SLURM cluster
#   snakemake --profile workflow/profiles/smoke reports/tables/kernel_size.md   # one table
#
# Rerun policy: rtmdet/ is deliberately *not* an input of any rule. A run is redone when what the
# experiment files and the scale say about it changes (params trigger on base preset + overrides:
# an edited variant, scale or data source), when its inputs are newer (mtime: regenerated data),
# or when the rule's command changes (code trigger) - so neither a comment edit in rtmdet/ nor a
# new config field with its default retrains anything. After a change that does alter results, force it:
#   snakemake --profile ... --forcerun train ablation_tables     (or -R train / --forceall)
# The profiles pin --rerun-triggers mtime params input code (no software-env: no conda envs).
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


envvars:
    "PATH",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/report.smk"


localrules:
    ablation_tables,
    resolve_config,
    mlflow_setup,
    report_index,
    dota_patches,


rule ablation_tables:
    """Every ablation table, its figures, the timing tables and reports/README.md."""
    input:
        expand("reports/tables/{ablation}.md", ablation=ABLATIONS),
        expand("reports/tables/{table}.md", table=TIMING),
        "reports/README.md",


# One target per table: `snakemake table_kernel_size` == `snakemake reports/tables/kernel_size.md`.
for _ablation in ABLATIONS:

    rule:
        name:
            f"table_{_ablation}"
        input:
            f"reports/tables/{_ablation}.md",
            f"reports/figures/{_ablation}.png",


# Timing tables: `snakemake table_cache_loading_time` == `snakemake reports/tables/cache_loading_time.md`.
for _table in TIMING:

    rule:
        name:
            f"table_{_table}"
        input:
            f"reports/tables/{_table}.md",
