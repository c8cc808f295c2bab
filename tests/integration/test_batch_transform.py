"""inference/handler.py driven as SageMaker Batch Transform drives it, and the local transform step.

The container side is AWS's own inference toolkit (``sagemaker_inference.Transformer``, the code
that SageMaker's framework containers run): it imports ``inference.handler`` as the user module
named by ``SAGEMAKER_PROGRAM``, calls ``model_fn`` once and ``input_fn -> predict_fn -> output_fn``
per request. The Batch Transform side is played by a small agent that does what SageMaker does
with SplitType=Line, BatchStrategy=MultiRecord, AssembleWith=Line: read the input files, cut them
at line ends into payloads of at most MaxPayloadInMB, send each to the toolkit with its content
type and Accept, and join the responses into ``<file>.out``. Files in, files out.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from realcuts import store_item_cut

from inference.handler import InferenceError, input_fn, model_fn, predict_fn
from models.xgboost import GlobalXGBoost
from pipelines.contract import parse
from pipelines.steps import prepare
from pipelines.steps.transform import PayloadTooLargeError, mini_batches, run_files

pytestmark = pytest.mark.integration
HORIZON = 14
QUANTILES = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return store_item_cut(stores=2, items=10, since="2016-06-01")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, sales: pd.DataFrame) -> Path:
    """A real global XGBoost, small enough to train in seconds, saved with its manifest."""
    path = tmp_path_factory.mktemp("model")
    GlobalXGBoost(horizon=HORIZON, n_estimators=20, max_origins=10, n_jobs=1).fit(sales, "D").save(path)
    return path


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory: pytest.TempPathFactory, sales: pd.DataFrame) -> Path:
    """The real Prepare step's output: one JSON line per series, split into part files."""
    base = tmp_path_factory.mktemp("prepare")
    raw = base / "processing" / "input" / "raw"
    raw.mkdir(parents=True)
    sales.assign(tenant_id="acme").to_parquet(raw / "sales.parquet")
    saved, prepare.SERIES_PER_FILE = prepare.SERIES_PER_FILE, 7  # several part files from 20 series
    try:
        prepare.main(parse(["--sm-base", str(base), "--tenant", "acme", "--horizon", str(HORIZON)]))
    finally:
        prepare.SERIES_PER_FILE = saved
    return base / "processing" / "output" / "batch"


class ModelServerContext:
    """What the model server hands the toolkit per request: model dir, request headers, response slots."""

    def __init__(self, model_dir: Path, content_type: str, accept: str) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.request_processor = [self]
        self.headers = {"Content-Type": content_type, "Accept": accept}
        self.status: tuple[int, str] | None = None
        self.response_types: dict[int, str] = {}

    def get_request_properties(self) -> dict[str, str]:
        return self.headers

    def set_response_content_type(self, index: int, value: str) -> None:
        self.response_types[index] = value

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)


def batch_transform(files: list[Path], out: Path, model_dir: Path, *, content_type: str, accept: str,
                    max_payload_mb: float = 6.0) -> None:  # fmt: skip
    """SageMaker's side of Batch Transform: split by line, MultiRecord payloads, assemble by line."""
    from sagemaker_inference.transformer import Transformer

    toolkit = Transformer()
    out.mkdir(parents=True, exist_ok=True)
    limit = int(max_payload_mb * 2**20)
    for file in files:
        responses = []
        for payload in _payloads(file.read_bytes().splitlines(keepends=True), limit):
            context = ModelServerContext(model_dir, content_type, accept)
            result = toolkit.transform([{"body": payload}], context)
            assert context.status is None, result  # the toolkit sets a status only for errors
            assert context.response_types[0] == accept
            responses.append(result[0] if isinstance(result[0], str) else result[0].decode())
        (out / f"{file.name}.out").write_text("".join(r if r.endswith("\n") else r + "\n" for r in responses))


def _payloads(lines: list[bytes], limit: int) -> list[bytes]:
    payloads, current = [], b""
    for line in lines:
        if current and len(current) + len(line) > limit:
            payloads.append(current)
            current = b""
        current += line
    return [*payloads, current] if current else payloads


def read_out(folder: Path, csv_output: bool = False) -> pd.DataFrame:
    frames = []
    for file in sorted(folder.glob("*.out")):
        text = file.read_text()
        if csv_output:
            names = ["store_id", "sku", "target_date", "horizon_day", "p10", "p50", "p90", "mean"]
            frames.append(
                pd.read_csv(io.StringIO(text), header=None, names=names, dtype={"store_id": str, "sku": str})
            )
        else:
            frames.append(pd.read_json(io.StringIO(text), lines=True, dtype={"store_id": str, "sku": str}))
    frame = pd.concat(frames, ignore_index=True)
    frame["target_date"] = pd.to_datetime(frame["target_date"]).dt.strftime("%Y-%m-%d")
    return frame.sort_values(["store_id", "sku", "horizon_day"], ignore_index=True)


def direct(model_dir: Path, sales: pd.DataFrame) -> pd.DataFrame:
    """The model called in-process on the same history: what every path must reproduce."""
    out = model_fn(str(model_dir)).predict(sales, HORIZON, QUANTILES)
    out["target_date"] = pd.to_datetime(out["target_date"]).dt.strftime("%Y-%m-%d")
    return out.sort_values(["store_id", "sku", "horizon_day"], ignore_index=True)


def assert_same_forecasts(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want) == 20 * HORIZON
    key = ["store_id", "sku", "target_date", "horizon_day"]
    assert got[key].astype(str).equals(want[key].astype(str))
    for column in ("p10", "p50", "p90", "mean"):
        assert got[column].to_numpy() == pytest.approx(want[column].to_numpy(), rel=1e-6, abs=1e-6)


@pytest.fixture
def toolkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.handler")
    monkeypatch.setenv("ORDERNIMBUS_HORIZON", str(HORIZON))


@pytest.mark.usefixtures("toolkit_env")
def test_json_lines_files_through_the_inference_toolkit(
    batch_dir: Path, model_dir: Path, sales: pd.DataFrame, tmp_path: Path
) -> None:
    files = sorted(batch_dir.glob("*.jsonl"))
    assert len(files) == 3
    # 0.1 MB payloads: each file is cut into several requests, never inside a series' line
    batch_transform(files, tmp_path / "out", model_dir, content_type="application/jsonlines",
                    accept="application/jsonlines", max_payload_mb=0.1)  # fmt: skip
    outs = sorted((tmp_path / "out").glob("*.out"))
    assert [o.name for o in outs] == [f"{f.name}.out" for f in files]
    first_file_series = [json.loads(line)["sku"] for line in files[0].read_text().splitlines()]
    first_out = pd.read_json(io.StringIO(outs[0].read_text()), lines=True, dtype={"sku": str})
    assert list(dict.fromkeys(first_out["sku"])) == list(dict.fromkeys(first_file_series))  # input order kept
    assert_same_forecasts(read_out(tmp_path / "out"), direct(model_dir, sales))


@pytest.mark.usefixtures("toolkit_env")
def test_csv_lines_files_through_the_inference_toolkit(
    model_dir: Path, sales: pd.DataFrame, tmp_path: Path
) -> None:
    """One CSV line per series (store_id,sku,end_date,units...), split by line, CSV out."""
    source = tmp_path / "in"
    source.mkdir()
    groups = list(sales.sort_values("date").groupby(["store_id", "sku"], sort=True))
    for part in range(2):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if part == 0:
            writer.writerow(["store_id", "sku", "end_date", "units..."])  # a header line is skipped
        for (store, sku), group in groups[part * 10 : part * 10 + 10]:
            writer.writerow([store, sku, group["date"].max().date().isoformat(), *group["units"].tolist()])
        (source / f"part-{part}.csv").write_text(buffer.getvalue())
    files = sorted(source.glob("*.csv"))
    batch_transform(files, tmp_path / "out", model_dir, content_type="text/csv", accept="text/csv",
                    max_payload_mb=0.02)  # fmt: skip
    text = (tmp_path / "out" / "part-0.csv.out").read_text()
    assert not text.startswith("store_id")  # headerless: responses are joined line by line
    assert_same_forecasts(read_out(tmp_path / "out", csv_output=True), direct(model_dir, sales))


@pytest.mark.usefixtures("toolkit_env")
def test_bad_requests_come_back_as_client_errors_from_the_toolkit(model_dir: Path) -> None:
    from sagemaker_inference.transformer import Transformer

    toolkit = Transformer()
    context = ModelServerContext(model_dir, "text/csv", "application/jsonlines")
    result = toolkit.transform([{"body": b"1,2,2017-12-31\n"}], context)
    assert context.status is not None
    assert context.status[0] == 500
    assert "CSV line 1: expected store_id,sku,end_date,u_1,...,u_n, got 3 value(s)" in result[0]


def test_handler_refuses_what_it_cannot_read() -> None:
    with pytest.raises(InferenceError, match="unsupported content type 'application/x-parquet'"):
        input_fn(b"", "application/x-parquet")
    with pytest.raises(InferenceError, match="CSV line 2: could not convert string to float: 'many'"):
        input_fn("1,2,2017-12-31,4,5\n1,3,2017-12-31,4,many\n", "text/csv")
    with pytest.raises(InferenceError, match=r"lack required fields: \['units'\]"):
        input_fn('{"store_id": "1", "sku": "2", "date": "2017-01-01"}\n', "application/jsonlines")


def test_weekly_csv_end_dates_must_sit_on_the_models_anchor(model_dir: Path) -> None:
    model: Any = model_fn(str(model_dir))
    model.freq = "W-SUN"
    data = input_fn("1,2,2017-12-30,4,5,6\n", "text/csv")  # a Saturday
    with pytest.raises(InferenceError, match=r"weekly anchor \(W-SUN\)"):
        predict_fn(data, model)


def test_local_transform_in_parallel_matches_one_worker_and_the_model(
    batch_dir: Path, model_dir: Path, sales: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(batch_dir.glob("*.jsonl"))
    attrs = {"horizon": HORIZON, "quantiles": QUANTILES}
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    assert run_files(files, one, model_dir, attrs=attrs, workers=1, max_bytes=2**20) == 20
    forced = {"pool_min_series": 0, "batch_series": 3}  # a pool for 20 series, 7 mini-batches
    assert run_files(files, two, model_dir, attrs=attrs, workers=2, max_bytes=40_000, **forced) == 20
    assert "20 series in mini-batches of up to 3 on 2 process(es)" in capsys.readouterr().out
    assert sorted(p.name for p in two.iterdir()) == [f"{f.name}.out" for f in files]  # no .partial left
    assert_same_forecasts(read_out(two), read_out(one))
    assert_same_forecasts(read_out(two), direct(model_dir, sales))


def test_mini_batches_keep_lines_whole_and_bounded(tmp_path: Path) -> None:
    file = tmp_path / "part.jsonl"
    lines = [
        json.dumps({"store_id": "1", "sku": str(i), "pad": "x" * (50 + 10 * i)}) + "\n" for i in range(30)
    ]
    file.write_text("".join(lines) + "\n")
    batches = list(mini_batches(file, max_records=4, max_bytes=600))
    assert b"".join(batches).decode() == "".join(lines)
    assert all(len(b) <= 600 or b.count(b"\n") == 1 for b in batches)
    assert all(1 <= b.count(b"\n") <= 4 for b in batches)
    too_long = next(n for n, line in enumerate(lines, start=1) if len(line) > 300)
    with pytest.raises(
        PayloadTooLargeError, match=f"part.jsonl line {too_long} is {len(lines[too_long - 1])} bytes"
    ):
        list(mini_batches(file, max_records=4, max_bytes=300))
