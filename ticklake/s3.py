"""The embedded S3 server (moto) behind the broker's durable ``s3`` storage, and the
environment tansu's ``s3://`` engine reads."""

from __future__ import annotations

import logging
import sys
import urllib.request
from dataclasses import dataclass

from config.errors import DependencyError
from config.runtime import variables_with_prefix
from config.settings import Settings
from ticklake.processes import LocalServer, wait_until

log = logging.getLogger(__name__)

EMBEDDED_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ticklake", "AWS_SECRET_ACCESS_KEY": "ticklake",
                           "AWS_DEFAULT_REGION": "us-east-1"}
"""Credentials of the embedded moto S3 (moto accepts any)."""


def s3_environment(settings: Settings) -> dict[str, str]:
    """The environment tansu's ``s3://`` engine reads (object_store's AWS_* variables), after
    making sure the endpoint answers and the bucket exists.

    Raises:
        DependencyError: moto is missing (embedded endpoint), or boto3 cannot reach the
            endpoint or create the bucket (the message names the endpoint).
    """
    if settings.s3_endpoint:
        endpoint, env = settings.s3_endpoint, variables_with_prefix("AWS_")
    else:
        endpoint, env = EmbeddedS3(settings).start(), dict(EMBEDDED_S3_CREDENTIALS)
    env["AWS_ENDPOINT"] = endpoint
    if endpoint.startswith("http://"):
        env["AWS_ALLOW_HTTP"] = "true"
    ensure_bucket(endpoint, settings.s3_bucket, env)
    return env


def ensure_bucket(endpoint: str, bucket: str, env: dict[str, str]) -> None:
    """Create ``bucket`` at ``endpoint`` unless it exists (boto3, with ``env``'s credentials).

    Raises:
        DependencyError: the endpoint does not answer or refuses.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"))
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            client.create_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise DependencyError(f"cannot create bucket {bucket!r} at {endpoint}: {exc}") \
                from exc
    except BotoCoreError as exc:
        raise DependencyError(f"the S3 endpoint {endpoint} does not answer: {exc}") from exc


@dataclass(frozen=True)
class EmbeddedS3(LocalServer):
    """A moto S3 server on 127.0.0.1:``settings.s3_port`` for the broker's ``s3`` storage,
    tracked by a PID file under ``settings.run_dir``. It keeps objects in memory: stopping it
    loses them."""

    @property
    def name(self) -> str:
        return f"s3-{self.settings.s3_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.s3_port}"

    def start(self, timeout_s: float = 30.0) -> str:
        """Start moto's S3 server unless it runs; return its URL.

        Raises:
            DependencyError: moto is not installed, or it did not answer within ``timeout_s``.
        """
        if self.pid():
            return self.url
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise DependencyError("the s3 broker storage needs moto[server]: run `make setup` "
                                  "(or `pip install 'moto[server]==5.2.5'`), or set "
                                  "TICKLAKE_S3_ENDPOINT to an S3 endpoint") from exc
        proc = self.launch([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                            str(self.settings.s3_port)])

        def answering() -> bool:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DependencyError(f"the moto S3 server exited with code {proc.returncode} "
                                      f"(port {self.settings.s3_port} taken?); see "
                                      f"{self.log_file}")
            try:
                with urllib.request.urlopen(self.url, timeout=1):  # noqa: S310 (loopback)
                    return True
            except OSError:
                return False

        if wait_until(answering, timeout_s):
            log.info("embedded S3 (moto) on %s (pid %d)", self.url, proc.pid)
            return self.url
        self.stop()
        raise DependencyError(f"the moto S3 server did not answer on {self.url} within "
                              f"{timeout_s}s; see {self.log_file}")


