"""The local runner: executes a PipelineDef on one machine, each step a subprocess.

Like SageMaker Pipelines it runs independent steps in parallel (bounded by cores), caches steps by
code + inputs + parameters (CacheConfig), retries retryable steps with backoff, evaluates the
quality-gate condition from the evaluate step's property file, and keeps run records. A run that
died (killed runner, failed step) is resumed from its first unfinished step.

Crash safety: the executing process holds an exclusive lock on the run (released by the kernel
however the process dies), so ``resume`` can tell a live run (refused) from a dead one, whose steps
still marked Executing are recorded as failed and run again. Step processes, with the workers they
fork, die with their runner (a PR_SET_PDEATHSIG supervisor kills the step's process group), so no
orphan keeps writing into directories a resume reuses. Attempts count across executions, so the
records show what a crash cost.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import operator
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import tenant_dir, validate_tenant
from pipelines.contract import BAD_INPUT
from pipelines.definition import PIPELINES, PipelineDef, Step
from pipelines.records import RunRecord, RunStore

Event = Callable[[str, str, str], None]  # (step, status, message)
CODE_PACKAGES = ("features", "models", "pipelines", "inference", "ordernimbus")
OPS = {"<=": operator.le, ">=": operator.ge}
RUN_LOCK = ".runner.lock"
# Each step runs under this supervisor: the kernel sends it SIGTERM when the runner dies
# (PR_SET_PDEATHSIG), and it then kills the step's whole process group, worker processes included
# (statsforecast, xgboost and torch fork their own). A killed runner must not leave orphans writing
# into the directories a resume reuses. The step itself runs exactly as ``python -m <module>``.
_STEP_SUPERVISOR = """
import ctypes, os, signal, subprocess, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("runner died before the step started")
step = subprocess.Popen([sys.executable, "-m", *sys.argv[2:]], start_new_session=True)

def stop(signum, frame):
    try:
        os.killpg(step.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
code = step.wait()
import resource  # the step's CPU time, its worker processes' included (they are waited for)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"--- cpu {used.ru_utime + used.ru_stime:.1f} s", flush=True)
sys.exit(code if code >= 0 else 128 - code)
"""
_CPU_LINE = re.compile(r"^--- cpu ([0-9.]+) s$", re.MULTILINE)


def cpu_seconds(log: Path | str | None) -> float | None:
    """CPU seconds (user + system, worker processes included) of a step's last execution, from its log.

    Wall seconds of steps that run side by side depend on what shares the cores with them; CPU
    seconds do not, so they say which step costs what and what the build needs of a machine.
    """
    path = Path(log) if log else None
    found = _CPU_LINE.findall(path.read_text(errors="replace")) if path and path.exists() else []
    return float(found[-1]) if found else None


class PipelineFailed(OrderNimbusError):  # noqa: N818 - public name used by callers
    title = "Pipeline run failed"


class PipelineInterrupted(PipelineFailed):
    """A step stopped by SIGINT or SIGTERM (Ctrl-C reaches the whole process group): not a
    failure to retry. The run is marked Stopped, and ``resume`` picks it up."""


INTERRUPTED = (128 + 2, 128 + 15)  # the step supervisor's exit codes for SIGINT and SIGTERM


class LocalRunner:
    def __init__(self, settings: Settings, on_event: Event | None = None, retries: int = 2) -> None:
        self.settings = settings
        self.records = RunStore(settings.runs_db_url)
        self.on_event = on_event or (lambda step, status, message: None)
        self.retries = retries
        self._interrupted = False  # set on Ctrl-C: steps still running are neither retried nor followed

    # --- public --------------------------------------------------------------------------
    def start(self, name: str, tenant: str, parameters: dict[str, Any]) -> RunRecord:
        pipeline = PIPELINES[name]()
        validate_tenant(tenant)
        params = {p.name: p.default for p in pipeline.parameters}
        params.update({k: v for k, v in parameters.items() if v is not None})
        params["TenantId"] = tenant
        _check_parameters(pipeline, params)
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.records.create(run_id, tenant, name, params, [s.name for s in pipeline.steps])
        with self._run_lock(tenant, run_id):
            return self._execute(pipeline, run_id)

    def resume(self, run_id: str, tenant: str | None = None) -> RunRecord:
        run = self.records.get(run_id, tenant)
        if run is None:
            raise NotFoundError(f"no pipeline run {run_id!r}" + (f" for tenant {tenant!r}" if tenant else ""))
        if run.status == "Succeeded":
            return run
        with self._run_lock(run.tenant_id, run_id):  # raises if the run's runner is still alive
            for step in run.steps:
                if step.status == "Executing":
                    self._mark_orphaned(run_id, step.step, step.log)
            for step in run.steps:
                if step.status not in ("Succeeded", "Skipped"):
                    self.records.update_step(run_id, step.step, status="Pending", error=None)
            self.records.update_run(run_id, status="Executing", error=None, finished_at=None)
            return self._execute(PIPELINES[run.pipeline](), run_id)

    @contextmanager
    def _run_lock(self, tenant: str, run_id: str) -> Iterator[None]:
        """An exclusive lock held by the process executing a run; the kernel drops it when that dies.

        So a run still marked Executing is live exactly when its lock is taken, whatever killed it
        (SIGKILL, OOM, a reboot) and without trusting a PID that may have been reused.
        """
        path = tenant_dir(self.settings.runs_dir, tenant, run_id, RUN_LOCK)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise ConflictError(
                    f"run {run_id} is still executing in runner process {holder}; wait for it "
                    "(ordernimbus pipeline status) or stop that process before resuming"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _mark_orphaned(self, run_id: str, step: str, log: str | None) -> None:
        """A step left Executing by a dead runner failed: record why, so the resume reads right."""
        reason = "the runner process died while this step was executing (killed or crashed)"
        self.records.update_step(run_id, step, status="Failed", error=reason, finished_at=datetime.now(UTC))
        if log and Path(log).parent.exists():
            with open(log, "a") as handle:
                handle.write(f"--- {datetime.now(UTC).isoformat()} {reason}\n")
        self.on_event(step, "Failed", reason)

    # --- execution -----------------------------------------------------------------------
    def _execute(self, pipeline: PipelineDef, run_id: str) -> RunRecord:
        run = self.records.get(run_id)
        assert run is not None
        state = {s.step: s.status for s in run.steps}
        outputs = {s.step: s.outputs for s in run.steps}
        failed: str | None = None
        stopped = False
        self._interrupted = False  # a runner that was interrupted once may execute another run
        with ThreadPoolExecutor(max_workers=self.settings.max_parallel_steps) as pool:
            running: dict[Future[dict[str, str]], str] = {}
            try:
                while True:
                    for step in self._ready(pipeline, state, run, outputs):
                        state[step.name] = "Executing"
                        running[pool.submit(self._run_step, pipeline, step, run, outputs)] = step.name
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = running.pop(future)
                        try:
                            outputs[name] = future.result()
                            state[name] = "Succeeded"
                        except PipelineFailed as exc:
                            state[name] = "Failed"
                            stopped = stopped or isinstance(exc, PipelineInterrupted)
                            failed = failed or f"step {name} failed: {exc}"
                    if failed:  # let running steps finish (their records stay right), start nothing new
                        _settle(running)
                        break
            except KeyboardInterrupt:  # Ctrl-C: the steps got the signal too and stop at once
                self._interrupted = True
                _settle(running)
                self._stop(run_id, "interrupted (Ctrl-C)")
                raise
        if stopped:
            self._stop(run_id, failed or "a step was interrupted")
        else:
            status = "Failed" if failed else "Succeeded"
            self.records.update_run(run_id, status=status, error=failed, finished_at=datetime.now(UTC))
        record = self.records.get(run_id)
        assert record is not None
        return record

    def _ready(
        self, pipeline: PipelineDef, state: dict[str, str], run: RunRecord, outputs: dict[str, dict[str, str]]
    ) -> list[Step]:
        cond = pipeline.condition
        if cond and state.get(cond.step) == "Succeeded":
            branch_taken = self._condition(pipeline, run.parameters, outputs)
            skipped = cond.if_false if branch_taken else cond.if_true
            for name in skipped:
                if state[name] == "Pending":
                    state[name] = "Skipped"
                    self.records.update_step(run.run_id, name, status="Skipped")
                    self.on_event(name, "Skipped", f"{cond.name} chose the other branch")
        ready = []
        for step in pipeline.steps:
            if state[step.name] != "Pending":
                continue
            deps = {u for u, v in pipeline.edges() if v == step.name}
            if all(state[d] == "Succeeded" for d in deps):
                ready.append(step)
        return ready

    def _condition(
        self, pipeline: PipelineDef, params: dict[str, Any], outputs: dict[str, dict[str, str]]
    ) -> bool:
        cond = pipeline.condition
        assert cond is not None
        step = pipeline.step(cond.step)
        _, output, path = next(p for p in step.property_files if p[0] == cond.property_file)
        document = json.loads((Path(outputs[cond.step][output]) / path).read_text())
        value: Any = document
        for part in cond.json_path.split("."):
            value = value[part]
        return bool(OPS[cond.op](float(value), float(params[cond.right_param])))

    def _stop(self, run_id: str, why: str) -> None:
        """The run stopped on a signal: resumable, and never retried or continued meanwhile."""
        self.records.update_run(
            run_id,
            status="Stopped",
            error=f"{why}; resume with: ordernimbus pipeline resume {run_id}",
            finished_at=datetime.now(UTC),
        )

    def _run_step(
        self, pipeline: PipelineDef, step: Step, run: RunRecord, outputs: dict[str, dict[str, str]]
    ) -> dict[str, str]:
        base = tenant_dir(self.settings.runs_dir, run.tenant_id, run.run_id, step.name)
        args = self._arguments(step, run)
        inputs = {i.name: self._source(i.source, run, outputs) for i in step.inputs}
        key = _cache_key(step, args, inputs) if step.cache else None
        if (
            key
            and (hit := self.records.cached(key)) is not None
            and all(Path(p).exists() for p in hit.outputs.values())
        ):
            self.records.update_step(
                run.run_id,
                step.name,
                status="Succeeded",
                cache_key=key,
                cached_from=hit.cached_from,
                outputs=hit.outputs,
                seconds=0.0,
                log=hit.log,
                finished_at=datetime.now(UTC),
            )
            self.on_event(step.name, "Succeeded", f"cache hit (run {hit.cached_from})")
            return hit.outputs
        previous_log = Path(run.step(step.name).log or base / "step.log")
        carried = previous_log.read_text() if previous_log.exists() else ""  # a resume keeps the history
        step_outputs = self._layout(step, base, inputs)
        log = base / "step.log"
        log.write_text(carried)
        attempts = run.step(step.name).attempts + 1  # earlier (killed, failed) executions count
        tries = 1
        started = time.perf_counter()
        # One update: a reader never sees the step executing with its attempt not yet counted (the
        # resume-after-kill test saw that, between two updates, and killed the runner there).
        self.records.update_step(
            run.run_id,
            step.name,
            status="Executing",
            started_at=datetime.now(UTC),
            log=str(log),
            cache_key=key,
            attempts=attempts,
        )
        self.on_event(step.name, "Executing", "")
        while True:
            code = self._spawn(step, base, args, log, run.run_id)
            if code == 0:
                break
            interrupted = code in INTERRUPTED or self._interrupted
            if interrupted or not step.retryable or tries > self.retries or code == BAD_INPUT:
                reason = "stopped by a signal (Ctrl-C or SIGTERM)" if interrupted else _failure(base, log)
                self.records.update_step(
                    run.run_id,
                    step.name,
                    status="Failed",
                    attempts=attempts,
                    error=reason,
                    seconds=time.perf_counter() - started,
                    finished_at=datetime.now(UTC),
                )
                self.on_event(step.name, "Failed", reason)
                raise (PipelineInterrupted if interrupted else PipelineFailed)(reason)
            self.on_event(step.name, "Retrying", f"attempt {attempts} failed; retrying")
            time.sleep(min(2**tries, 30))
            attempts += 1
            tries += 1
            self.records.update_step(run.run_id, step.name, attempts=attempts)
        seconds = time.perf_counter() - started
        self.records.update_step(
            run.run_id,
            step.name,
            status="Succeeded",
            attempts=attempts,
            seconds=seconds,
            outputs=step_outputs,
            finished_at=datetime.now(UTC),
        )
        cpu = cpu_seconds(log)
        self.on_event(step.name, "Succeeded", f"{seconds:.1f} s" + (f", {cpu:.0f} CPU s" if cpu else ""))
        return step_outputs

    def _spawn(self, step: Step, base: Path, args: list[str], log: Path, run_id: str) -> int:
        env = {
            **os.environ,
            "ORDERNIMBUS_HOME": str(self.settings.home),
            "ORDERNIMBUS_RUN_ID": run_id,
            "PYTHONUNBUFFERED": "1",
            # Parallel steps share the cores: OpenMP threads (torch, XGBoost) that spin while waiting
            # for a busy core slow a small LSTM down ~100x; passive waiting yields the core instead.
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        }
        if step.kind == "training":
            env["SM_MODEL_DIR"] = str(base / "model")
            env["SM_OUTPUT_DATA_DIR"] = str(base / "output" / "data")
            for channel in (base / "input" / "data").iterdir():
                env[f"SM_CHANNEL_{channel.name.upper().replace('-', '_')}"] = str(channel)
        with open(log, "a") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()} {step.entrypoint} {' '.join(args)}\n")
            handle.flush()
            command = [
                sys.executable,
                "-c",
                _STEP_SUPERVISOR,
                str(os.getpid()),
                step.entrypoint,
                "--sm-base",
                str(base),
                *args,
                "--run_id",
                run_id,
            ]
            proc = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
        return proc.returncode

    def _layout(self, step: Step, base: Path, inputs: dict[str, Path]) -> dict[str, str]:
        """Build the /opt/ml tree of the step: inputs linked in, output folders created (and emptied)."""
        import shutil

        if base.exists():
            shutil.rmtree(base)
        folder = base / ("input/data" if step.kind == "training" else "processing/input")
        folder.mkdir(parents=True)
        for name, source in inputs.items():
            (folder / name).symlink_to(source.resolve())
        if step.kind == "training":
            outs = {"model": base / "model", "output": base / "output" / "data"}
        else:
            outs = {o: base / "processing" / "output" / o for o in step.outputs}
        for path in outs.values():
            path.mkdir(parents=True, exist_ok=True)
        return {k: str(v) for k, v in outs.items()}

    def _arguments(self, step: Step, run: RunRecord) -> list[str]:
        out = []
        for name, value in step.arguments:
            resolved = run.parameters[value[6:]] if value.startswith("param:") else value
            out += [f"--{name}", str(resolved)]
        return out

    def _source(self, source: str, run: RunRecord, outputs: dict[str, dict[str, str]]) -> Path:
        if source.startswith("param:"):
            value = str(run.parameters[source[6:]])
            if not value:
                raise PipelineFailed(f"pipeline parameter {source[6:]} is empty")
            return Path(value.removeprefix("file://"))
        step, _, output = source.partition("/")
        return Path(outputs[step][output])


def _settle(running: dict[Future[dict[str, str]], str]) -> None:
    """Wait for the steps already executing; cancel those still queued for a worker thread (after a
    Ctrl-C, two queued training steps started once the interrupted ones ended, and ran 22 s)."""
    for future in running:
        future.cancel()
    wait(running)


DEAD_RUN = "Stopped"  # recorded Executing, but no runner holds the run: killed, resumable


def run_status(settings: Settings, tenant: str, run_id: str, recorded: str) -> str:
    """A run's status as it is now: ``DEAD_RUN`` for a run still recorded Executing whose runner
    died (SIGKILL, a crash), which lists showed as running and the retraining debounce waited on
    for 24 hours. The CLI and the local trigger read statuses through here."""
    if recorded == "Executing" and not runner_alive(settings, tenant, run_id):
        return DEAD_RUN
    return recorded


def runner_alive(settings: Settings, tenant: str, run_id: str) -> bool:
    """Whether some process holds ``run_id``'s runner lock (see ``LocalRunner._run_lock``)."""
    path = tenant_dir(settings.runs_dir, tenant, run_id, RUN_LOCK)
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def runner_view(pipeline: PipelineDef) -> dict[str, Any]:
    """The DAG exactly as this runner executes it: steps, the edges ``_ready`` waits on, parameters, gate."""
    cond = pipeline.condition
    return {
        "name": pipeline.name,
        "parameters": [{"name": p.name, "type": p.type, "default": p.default} for p in pipeline.parameters],
        "steps": [
            {
                "name": s.name,
                "kind": s.kind,
                "entrypoint": s.entrypoint,
                "inputs": {i.name: i.source for i in s.inputs},
                "outputs": list(s.outputs),
                "arguments": dict(s.arguments),
                "property_files": [list(p) for p in s.property_files],
                "cache": s.cache,
                "retryable": s.retryable,
            }
            for s in pipeline.steps
        ],
        "edges": sorted([u, v] for u, v in pipeline.edges()),
        "condition": None
        if cond is None
        else {
            "name": cond.name,
            "step": cond.step,
            "property_file": cond.property_file,
            "json_path": cond.json_path,
            "op": cond.op,
            "right_param": cond.right_param,
            "if_true": list(cond.if_true),
            "if_false": list(cond.if_false),
        },
    }


def _check_parameters(pipeline: PipelineDef, params: dict[str, Any]) -> None:
    unknown = set(params) - {p.name for p in pipeline.parameters}
    if unknown:
        raise OrderNimbusError(f"unknown parameters for {pipeline.name}: {sorted(unknown)}")
    for p in pipeline.parameters:
        caster = {"String": str, "Integer": int, "Float": float}[p.type]
        try:
            params[p.name] = caster(params[p.name])
        except (TypeError, ValueError):
            raise OrderNimbusError(f"parameter {p.name}: expected {p.type}, got {params[p.name]!r}") from None
    if "Horizon" in params and not 1 <= int(params["Horizon"]) <= 365:
        raise OrderNimbusError(f"parameter Horizon: expected 1..365 periods, got {params['Horizon']}")


@cache
def code_version() -> str:
    """Hash of our own source: a code change invalidates every cached step."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _cache_key(step: Step, args: list[str], inputs: dict[str, Path]) -> str:
    digest = hashlib.sha256(f"{step.name}|{step.entrypoint}|{code_version()}|{args}".encode())
    for name in sorted(inputs):
        digest.update(name.encode())
        digest.update(_content_hash(inputs[name]).encode())
    return digest.hexdigest()[:32]


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _failure(base: Path, log: Path) -> str:
    failure = base / "output" / "failure"
    if failure.exists():
        return failure.read_text().strip()
    lines = log.read_text().strip().splitlines() if log.exists() else []
    tail = [line for line in lines if not _CPU_LINE.fullmatch(line)][-5:]  # the step's words, not ours
    return " | ".join(tail) or "step exited with an error"
