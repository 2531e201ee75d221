"""A Spark standalone cluster on this machine, for the tests and the benchmark: a master and N workers, each its
own JVM started from the PySpark package's bin/spark-class on 127.0.0.1, stopped by their process ids."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@contextlib.contextmanager
def standalone_cluster(base: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> Iterator[dict[str, Any]]:
    """Start the master and ``workers`` workers (``cores`` cores and ``memory`` each), logs in ``base``; wait
    until every worker has registered; stop them all (SIGTERM to each process group, then SIGKILL) on exit."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(base)}
    port, webui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    spark_class = str(spark_home / "bin" / "spark-class")
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(name: str, *args: str) -> None:
        log = (base / f"{name}.log").open("wb")
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [spark_class, *args], env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(webui))  # fmt: skip
        for n in range(1, workers + 1):
            start(
                f"worker{n}", "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores",
                str(cores), "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(base / f"work{n}"),
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while alive_workers(webui) < workers:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a Spark daemon exited: see the logs in {base}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Spark cluster did not come up in 120 s: see the logs in {base}")
            time.sleep(1)
        yield {"master": master, "webui": webui, "logs": base, "pids": [p.pid for p in processes]}
    finally:
        for process in processes:  # each daemon leads its own process group: its JVM and any child go with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in logs:
            log.close()
