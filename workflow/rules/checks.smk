# Dataset check before anything trains (user datasets only): a local job on the submit host, so on SLURM a
# broken COCO/VOC folder is reported (every problem, one line each) before any GPU job is queued.

import shlex

localrules:
    check_data,


def datacheck_needs():
    """{'coco': root, 'voc': devkit} of the user's datasets the selected runs train on ({} if synthetic)."""
    if PIPE.synthetic:
        return {}
    datasets = {PIPE.matrix.run(run).dataset for run, _ in PIPE.jobs()}
    roots = {"coco": config.get("data_root"), "voc": config.get("voc_root")}
    return {name: roots[name] for name in ("coco", "voc") if name in datasets and roots[name]}


def datacheck_inputs():
    """What every training job waits for: the dataset check's summary (nothing for the synthetic data)."""
    return [f"{R}/checks/datasets.json"] if datacheck_needs() else []


def datacheck_args():
    args = [f"--{name} {shlex.quote(str(root))}" for name, root in datacheck_needs().items()]
    args += [f"--expect-{key.replace('_', '-')} {'none' if value in (None, 'null') else value}"
             for key, value in config["data_check_counts"].items()]
    return " ".join(args)


rule check_data:
    output:
        f"{R}/checks/datasets.json",
    params:
        args=datacheck_args(),
    log:
        f"{R}/logs/check_data.log",
    shell:
        "{PY} -m ld_core check-data {params.args} --out {output} 2>&1 | tee {log}"
