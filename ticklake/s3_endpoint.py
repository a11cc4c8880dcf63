"""A local S3 endpoint for trying an ``s3://`` lake and for the tests: moto's server.

moto (https://github.com/getmoto/moto) serves the S3 API in memory: its ``moto_server`` is a
maintained stand-in for S3 that needs no account, keeps nothing after it stops and listens
on 127.0.0.1 only. It is not storage to keep a lake in: everything is lost when it stops.

``python -m ticklake.s3_endpoint --bucket lake`` starts one in the foreground and prints the
AWS variables that point the lakehouse at it (``--help``); :class:`LocalS3Endpoint` is what
the tests and ``ticklake up`` use.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

from config.errors import DependencyError
from config.runtime import exit_on_error
from config.settings import load_settings
from ticklake.processes import LocalServer, port_free, wait_until

log = logging.getLogger(__name__)

ACCESS_KEY = "ticklake"
"""The access key the local endpoint's clients use (moto accepts any)."""
SECRET_KEY = "ticklake-local-s3"  # noqa: S105 - not a secret: moto accepts any key
"""The secret key the local endpoint's clients use (moto accepts any)."""
DEFAULT_PORT = 9878


@dataclass(frozen=True)
class LocalS3Endpoint(LocalServer):
    """moto's S3 server on ``127.0.0.1:port``, tracked by ``<run_dir>/s3.pid``."""

    port: int = DEFAULT_PORT
    stop_timeout_s: ClassVar[float] = 5.0

    @property
    def name(self) -> str:
        return "s3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The AWS variables that point S3 clients (delta-rs, Spark's S3A, s3fs, boto3) at
        this endpoint."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def start(self, timeout_s: float = 30.0) -> int:
        """Start the server and wait until it answers.

        Returns:
            Its PID.

        Raises:
            DependencyError: the port is taken, or the server exits or does not answer in
                ``timeout_s`` (the message names its log file).
        """
        running = self.pid()
        if running:
            return running
        if not port_free("127.0.0.1", self.port):
            raise DependencyError(f"something else listens on 127.0.0.1:{self.port}; stop it "
                                  "or choose another port")
        proc = self.launch([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                            "-p", str(self.port)])

        def answering() -> bool:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DependencyError(f"the local S3 endpoint (moto) exited with code "
                                      f"{proc.returncode}; see {self.log_file}")
            return not port_free("127.0.0.1", self.port)

        if not wait_until(answering, timeout_s, interval_s=0.1):
            self.stop()
            raise DependencyError(f"the local S3 endpoint did not answer on {self.url} within "
                                  f"{timeout_s}s; see {self.log_file}")
        log.info("local S3 endpoint (moto) on %s, pid %d", self.url, proc.pid)
        return proc.pid

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (nothing happens if it exists)."""
        import boto3  # type: ignore[import-untyped]

        client = boto3.client("s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ticklake.s3_endpoint",
        description="Run a local S3 endpoint (moto's server, in memory: everything is lost "
        "when it stops) on 127.0.0.1 until Ctrl-C or SIGTERM, with a bucket, and print the "
        "AWS variables that point ticklake at it.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--bucket", default="lake", help="bucket to create (default lake)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    endpoint = LocalS3Endpoint(load_settings(), port=args.port)

    def stop_on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def serve() -> None:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        signal.signal(signal.SIGINT, stop_on_sigterm)  # also when started in the background
        endpoint.start()
        try:
            endpoint.create_bucket(args.bucket)
            for key, value in endpoint.environment().items():
                print(f"export {key}={value}")
            print(f"# then: --lake s3://{args.bucket}/lake ; Ctrl-C stops the endpoint",
                  flush=True)
            while endpoint.pid():
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            endpoint.stop()

    exit_on_error(serve)


if __name__ == "__main__":
    main()
