"""Inside a SageMaker job: adapt S3 artefacts to the step contract, run the step, package its model.

The step entrypoints (``pipelines.steps.*``) read directories. On SageMaker a processing step that
consumes a training job's results receives ``model.tar.gz`` / ``output.tar.gz`` archives instead, and
a registered model version must be one ``model.tar.gz`` that also carries its inference code. This
module bridges both ways so that the entrypoints stay identical on the laptop and in the cloud:

1. every processing input folder holding nothing but ``*.tar.gz`` archives is unpacked in place;
2. the step module runs (``python -m <module> <args>``, same arguments as the local runner);
3. ``--pack OUTPUT`` turns an output folder into ``model.tar.gz`` with the code under ``code/``
   (the layout SageMaker's framework inference containers load, ``SAGEMAKER_PROGRAM`` inside it);
4. ``--document EVALUATION:MODEL`` writes ``document.json`` next to ``evaluation.json``: the
   metrics, lineage and inference spec the SageMaker registry adapter reads for each version.

The compiled definition runs it as ``python3 -m pipelines.sagemaker_container <module> [flags] --
<step args>`` after the bootstrap (:data:`pipelines.sagemaker.BOOTSTRAP`) has unpacked the code.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from pipelines.contract import DEFAULT_BASE

MODEL_ARCHIVE = "model.tar.gz"
DOCUMENT = "document.json"
INFERENCE_SPEC = {"handler": "inference.handler", "content_types": ["application/jsonlines", "text/csv"]}


def unpack_inputs(base: Path) -> list[Path]:
    """Extract archive-only processing inputs in place; the archives are removed afterwards."""
    unpacked = []
    root = base / "processing" / "input"
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and p.name != "code"):
        entries = list(folder.iterdir())
        if entries and all(e.is_file() and e.name.endswith(".tar.gz") for e in entries):
            for archive in entries:
                with tarfile.open(archive) as tar:
                    tar.extractall(folder, filter="data")
                archive.unlink()
            unpacked.append(folder)
    return unpacked


def pack_model(folder: Path, code_dir: Path | None) -> Path:
    """Replace the folder's files by ``model.tar.gz`` holding them (and ``code/`` when given)."""
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz")
    os.close(fd)
    with tarfile.open(tmp, "w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)
        if code_dir is not None and code_dir.is_dir():
            tar.add(code_dir, arcname="code", filter=_skip_bytecode)
    for item in folder.iterdir():
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    target = folder / MODEL_ARCHIVE
    shutil.move(tmp, target)
    return target


def _skip_bytecode(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name else info


def write_document(evaluation_dir: Path, model_dir: Path) -> Path:
    """The registry document of the version: metrics, lineage (from the data the model saw), spec."""
    metrics = json.loads((evaluation_dir / "evaluation.json").read_text())
    meta_file = model_dir / "data_meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    lineage = {
        "data_fingerprint": meta.get("fingerprint", ""),
        "data_start": meta.get("start", ""),
        "data_end": meta.get("end", ""),
        "feature_spec": metrics.get("feature_spec", ""),
        "code_version": os.environ.get("ORDERNIMBUS_CODE_VERSION", ""),
    }
    target = evaluation_dir / DOCUMENT
    target.write_text(json.dumps({"metrics": metrics, "lineage": lineage, "inference_spec": INFERENCE_SPEC}))
    return target


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    cut = argv.index("--") if "--" in argv else len(argv)
    own, step_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m pipelines.sagemaker_container", allow_abbrev=False)
    parser.add_argument("module", help="step entrypoint module, e.g. pipelines.steps.evaluate")
    parser.add_argument("--sm-base", type=Path, default=DEFAULT_BASE)
    parser.add_argument("--code-dir", type=Path, default=Path.cwd())
    parser.add_argument("--pack", action="append", default=[], metavar="OUTPUT")
    parser.add_argument("--document", default=None, metavar="EVALUATION:MODEL")
    return parser.parse_args(own), step_args


def main(argv: list[str] | None = None) -> int:
    args, step_args = _parse(list(sys.argv[1:] if argv is None else argv))
    base: Path = args.sm_base
    for folder in unpack_inputs(base):
        print(f"unpacked the archive(s) of input {folder.name}")
    sys.argv = [args.module, "--sm-base", str(base), *step_args]
    try:
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return exc.code if isinstance(exc.code, int) else 1
    outputs = base / "processing" / "output"
    if args.document:
        evaluation, model = args.document.split(":", 1)
        write_document(outputs / evaluation, outputs / model)
    for name in args.pack:
        print(f"packed output {name}: {pack_model(outputs / name, args.code_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
