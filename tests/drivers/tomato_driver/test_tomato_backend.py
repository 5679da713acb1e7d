"""The tomato backend against a real tomato daemon (tomato 2.x, started here on a loopback port, its
settings and device files in tmp_path) running the ``tomato-example-counter`` device: limits, a job
submitted, followed and read back, refusals, a cancel by a stop, and a daemon that dies mid-job."""

from __future__ import annotations

import asyncio
import time

import pytest

from labweave.drivers.base import InstrumentFault, InstrumentStopped, ParameterError
from labweave.drivers.tomato.daemon import TomatoDaemon
from labweave.schemas.limitation import malformed, violations
from labweave.services.tenant import catalog

from .daemon import TomatoDaemonProcess

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def daemon(tmp_path):
    with TomatoDaemonProcess(tmp_path / "tomato") as running:
        yield running


def device(daemon, tmp_path, **options):
    return catalog.build("tomato", "tomato", state=tmp_path / "lab",
                         options={"port": daemon.port, "pipeline": "pip-counter", "poll_seconds": 0.2} | options)


def count(seconds: float, **params) -> dict:
    return {"sample": "cell-1", "tasks": [{"component_role": "counter", "technique_name": "count",
                                           "max_duration": seconds, "sampling_interval": 0.2,
                                           "task_params": params}]}


def job_status(daemon, jobid: int) -> str:
    client = TomatoDaemon(daemon.port)
    try:
        return client.job(jobid).status
    finally:
        client.close()


def test_the_devices_attributes_are_the_tenants_limitations(daemon, tmp_path):
    inst = device(daemon, tmp_path)
    (entry,) = inst.limitations()
    assert (entry["quantity"], entry["method"]) == ("tomatoJob", "tomato")
    limits = entry["limitations"]
    assert malformed(limits) == []
    (task,) = limits["tasks"]
    assert task["component_role"] == ["counter"] and task["technique_name"] == ["count", "random"]
    assert task["task_params"]["param"] == [{"min": pytest.approx(0.1)}]  # tomato's 0.1 s, in the attr's seconds
    assert task["task_params"]["choice"] == ["blue", "green", "red"]
    assert "max" not in task["task_params"]  # a float attribute without bounds is free
    assert violations(limits, count(2, param=0.5)) == []
    assert violations(limits, count(2, param=0.05)) == ["parameters.tasks[0].task_params.param: 0.05 is below the "
                                                        "minimum 0.1"]
    wrong = count(2) | {"tasks": [count(2)["tasks"][0] | {"technique_name": "dance"}]}
    assert violations(limits, wrong)[0].startswith("parameters.tasks[0].technique_name: 'dance' is not one of")
    # the capability the operator registers is generated from the same models
    (capability,) = inst.capabilities()
    assert capability["quantity"] == "tomatoJob"


def test_a_job_is_submitted_followed_and_its_data_read_back(daemon, tmp_path):
    inst = device(daemon, tmp_path)
    seen: list[float] = []

    async def progress(fraction: float, message: str) -> None:
        seen.append(fraction)

    result = asyncio.run(inst.perform("tomatoJob", "tomato", count(2.0, max=7.0, choice="red"), progress))
    assert result["pipeline"] == "pip-counter" and result["tomato_version"].startswith("2.")
    counter = result["data"]["counter"]
    assert counter["val"]["n"] >= 5 and counter["val"]["first"] == 0 and 1 <= counter["val"]["last"] <= 2
    assert counter["max"]["mean"] == 7.0 and counter["choice"]["last"] == "red"
    assert counter["param"]["units"] == "second"
    assert seen and 0 < seen[-1] <= 1
    assert job_status(daemon, result["job_id"]) == "c"
    nc = tmp_path / "lab" / "tomato" / f"labweave-cell-1-1.nc"
    assert nc.is_file()  # tomato's NetCDF, in the lab's folder
    # the sample was ejected: the next job runs on the same pipeline
    again = asyncio.run(inst.perform("tomatoJob", "tomato", count(1.0) | {"sample": "cell-2"}))
    assert again["job_id"] == result["job_id"] + 1


@pytest.mark.parametrize("change, field, words", [
    # the device's published limits, checked at the driver's boundary (labweave.drivers.base.Instrument.admit)
    ({"technique_name": "dance"}, "tasks[0].technique_name", "'dance' is not one of ['count', 'random']"),
    ({"component_role": "heater"}, "tasks[0].component_role", "'heater' is not one of ['counter']"),
    ({"task_params": {"choice": "purple"}}, "tasks[0].task_params.choice", "not one of"),
    ({"task_params": {"param": 0.01}}, "tasks[0].task_params.param", "0.01 is below the minimum 0.1"),
    # what the limitations cannot say, checked by the tomato backend against the device
    ({"task_params": {"speed": 3}}, "tasks[0].task_params.speed", "no attribute"),
])
def test_a_task_the_device_cannot_run_is_refused_by_field_before_anything_is_queued(daemon, tmp_path, change,
                                                                                  field, words):
    inst = device(daemon, tmp_path)
    params = count(1.0)
    params["tasks"][0] |= change
    with pytest.raises(ParameterError) as err:
        asyncio.run(inst.perform("tomatoJob", "tomato", params))
    assert err.value.field == field and words in str(err.value), (err.value.field, str(err.value))
    client = TomatoDaemon(daemon.port)
    try:
        assert client.status().pips["pip-counter"].jobid is None
    finally:
        client.close()


async def _wait_running(inst, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while inst.backend._jobid is None or job_status_async(inst) != "r":
        assert time.monotonic() < deadline, "the tomato job did not start"
        await asyncio.sleep(0.2)
    return inst.backend._jobid


def job_status_async(inst) -> str:
    return inst.backend.daemon.job(inst.backend._jobid).status


def test_a_stop_cancels_the_running_tomato_job(daemon, tmp_path):
    inst = device(daemon, tmp_path)

    async def scenario() -> int:
        job = asyncio.create_task(inst.perform("tomatoJob", "tomato", count(120.0)))
        jobid = await _wait_running(inst)
        daemon.remember()
        await inst.safe_stop()  # what the runtime does on an emergency stop or a lost lease
        with pytest.raises(InstrumentStopped, match=f"tomato job {jobid} was cancelled"):
            await asyncio.wait_for(job, 60)
        return jobid

    jobid = asyncio.run(scenario())
    assert job_status(daemon, jobid) == "cd"
    inst.resume()
    assert asyncio.run(inst.perform("tomatoJob", "tomato", count(0.6)))["job_id"] == jobid + 1


def test_a_daemon_gone_mid_job_is_a_retryable_failure_with_tomatos_message(daemon, tmp_path):
    inst = device(daemon, tmp_path, unreachable_seconds=2, timeout_ms=500)

    async def scenario() -> None:
        job = asyncio.create_task(inst.perform("tomatoJob", "tomato", count(120.0)))
        jobid = await _wait_running(inst)
        daemon.kill()
        with pytest.raises(InstrumentFault) as err:
            await asyncio.wait_for(job, 60)
        assert err.value.retryable
        assert f"tomato daemon stopped answering during job {jobid}" in str(err.value)
        assert f"tomato not running on port {daemon.port}" in str(err.value)  # tomato's own words

    asyncio.run(scenario())


def test_no_daemon_is_a_retryable_fault_naming_the_port(tmp_path):
    from labweave.services.server.process import free_port

    port = free_port()
    inst = catalog.build("tomato", "tomato", state=tmp_path,
                         options={"port": port, "pipeline": "pip-counter", "timeout_ms": 300})
    with pytest.raises(InstrumentFault) as err:
        inst.limitations()
    assert err.value.retryable and f"tomato not running on port {port}" in str(err.value)


def test_an_unknown_pipeline_is_named_with_those_there_are(daemon, tmp_path):
    inst = device(daemon, tmp_path, pipeline="pip-nothing")
    with pytest.raises(InstrumentFault) as err:
        inst.limitations()
    assert not err.value.retryable and "pipeline 'pip-nothing' not found on tomato (its pipelines: pip-counter)" \
        in str(err.value)


def test_a_unicycler_protocol_as_a_tomato_payload_is_accepted_by_the_daemon(daemon, tmp_path):
    """The round trip's tomato half: the payload made from a unicycler protocol goes into tomato's queue (the
    counter cannot run cycling tasks, so it waits there) and is cancelled."""
    from aurora_unicycler import CyclingProtocol as UnicyclerProtocol

    from labweave.drivers.cycler.unicycler import tomato_tasks
    from labweave.drivers.tomato.payload import build_payload
    from tests.drivers.test_unicycler import protocol

    tasks = tomato_tasks(UnicyclerProtocol.model_validate(protocol()), None)
    payload = build_payload(tasks, "cell-7", tmp_path / "out", "cell-7")
    client = TomatoDaemon(daemon.port)
    try:
        job = client.submit(payload, tmp_path / "payloads", "cell-7-cycling")
        assert job.status == "q" and len(job.payload.method) == 15
        assert job.payload.method[0].technique_name == "constant_current"
        client.cancel(job.id)
        assert client.job(job.id).status == "cd"
    finally:
        client.close()
