"""Inside a SageMaker job, rehearsed on disk: the bootstrap, the code archive and the container adapter.

The job's ``/opt/ml`` is a temp directory (the bootstrap's paths are rewritten to it); everything
else is what SageMaker would run: the content-addressed archive is unpacked, the step runs from
the unpacked code (not from this checkout), archives of training outputs are unpacked, and the
model output is packed as ``model.tar.gz`` with its inference code under ``code/``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
from realcuts import store_item_cut

from pipelines.sagemaker_code import build_bundle
from pipelines.sagemaker_container import pack_model, unpack_inputs, write_document
from pipelines.sagemaker_sdk import BOOTSTRAP


def _job_dir(tmp_path: Path) -> Path:
    base = tmp_path / "opt" / "ml"
    raw = base / "processing" / "input" / "raw"
    raw.mkdir(parents=True)
    sales = store_item_cut(stores=1, items=2, since="2017-06-01")
    sales.insert(0, "tenant_id", "acme")  # the lake's canonical shape
    sales.to_parquet(raw / "sales.parquet", index=False)
    code = base / "processing" / "input" / "code"
    code.mkdir(parents=True)
    (code / "sourcedir.tar.gz").write_bytes(build_bundle().data)
    return base


def _image_python(tmp_path: Path) -> Path:
    """A ``python3`` on PATH standing for the image's interpreter (ours, with the requirements)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def test_bootstrap_runs_a_real_step_from_the_code_archive_and_packs_its_output(tmp_path: Path) -> None:
    base = _job_dir(tmp_path)
    bin_dir = _image_python(tmp_path)
    script = BOOTSTRAP.replace("/opt/ml", str(base))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "ORDERNIMBUS_SKIP_PIP": "1",
        "HOME": str(tmp_path),
        "ORDERNIMBUS_HOME": str(tmp_path / "state"),
    }
    args = ["pipelines.steps.validate", f"--sm-base={base}", "--pack=sales", "--", "--tenant", "acme"]
    done = subprocess.run(
        ["/bin/sh", "-c", script, "ordernimbus-step", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated" in done.stdout
    code_dir = base / "code"
    assert (code_dir / "pipelines" / "steps" / "validate.py").exists()  # unpacked from the archive

    output = base / "processing" / "output" / "sales"
    assert sorted(p.name for p in output.iterdir()) == ["model.tar.gz"]
    with tarfile.open(output / "model.tar.gz") as archive:
        names = set(archive.getnames())
        meta = json.loads(archive.extractfile("meta.json").read())  # type: ignore[union-attr]
    assert {"sales.parquet", "meta.json", "code/ordernimbus_serve.py", "code/inference/handler.py"} <= names
    assert meta["tenant"] == "acme"
    assert meta["rows"] == str(len(store_item_cut(stores=1, items=2, since="2017-06-01")))
    report = json.loads((base / "processing" / "output" / "report" / "report.json").read_text())
    assert report["series"] == "2"


def test_bootstrap_reports_a_failing_step_with_its_exit_code_and_failure_file(tmp_path: Path) -> None:
    base = _job_dir(tmp_path)
    (base / "processing" / "input" / "raw" / "sales.parquet").unlink()
    bin_dir = _image_python(tmp_path)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ORDERNIMBUS_SKIP_PIP": "1", "HOME": str(tmp_path)}
    args = ["pipelines.steps.validate", f"--sm-base={base}", "--", "--tenant", "acme"]
    done = subprocess.run(
        ["/bin/sh", "-c", BOOTSTRAP.replace("/opt/ml", str(base)), "x", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 2  # bad input (an OrderNimbusError), which no retry mends
    assert "ingest a file first" in (base / "output" / "failure").read_text()  # SageMaker's FailureReason


def test_training_archives_are_unpacked_and_other_inputs_left_alone(tmp_path: Path) -> None:
    inputs = tmp_path / "processing" / "input"
    model = inputs / "model-xgboost"
    model.mkdir(parents=True)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as archive:
        data = b'{"class": "GlobalXGBoost"}'
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (model / "model.tar.gz").write_bytes(payload.getvalue())
    mixed = inputs / "sales"
    mixed.mkdir()
    (mixed / "sales.parquet").write_bytes(b"PAR1")
    (mixed / "extra.tar.gz").write_bytes(payload.getvalue())

    assert unpack_inputs(tmp_path) == [model]
    assert json.loads((model / "manifest.json").read_text()) == {"class": "GlobalXGBoost"}
    assert not (model / "model.tar.gz").exists()
    assert sorted(p.name for p in mixed.iterdir()) == ["extra.tar.gz", "sales.parquet"]


def test_registry_document_carries_metrics_and_the_data_lineage(tmp_path: Path) -> None:
    evaluation, model = tmp_path / "evaluation", tmp_path / "model"
    evaluation.mkdir()
    model.mkdir()
    metrics = {
        "ensemble": {"wape": 0.105},
        "gate": {"passed": True, "wape_ratio": 0.76},
        "feature_spec": "abc",
    }
    (evaluation / "evaluation.json").write_text(json.dumps(metrics))
    (model / "data_meta.json").write_text(
        json.dumps({"fingerprint": "f00d", "start": "2016-06-01", "end": "2017-12-31"})
    )
    document = json.loads(write_document(evaluation, model).read_text())
    assert document["metrics"] == metrics
    assert document["lineage"]["data_fingerprint"] == "f00d"
    assert document["lineage"]["data_end"] == "2017-12-31"
    assert document["inference_spec"]["handler"] == "inference.handler"

    code = tmp_path / "code"
    (code / "__pycache__").mkdir(parents=True)
    (code / "ordernimbus_serve.py").write_text("x = 1\n")
    (code / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    packed = pack_model(model, code)
    with tarfile.open(packed) as archive:
        assert sorted(archive.getnames()) == ["code", "code/ordernimbus_serve.py", "data_meta.json"]
    assert os.listdir(model) == ["model.tar.gz"]
    assert pd.Timestamp(document["lineage"]["data_start"]).year == 2016
