"""Where the lake lives, a local folder or an S3 bucket, and how each client reaches it.

A lake is a local folder (``lake``, ``/data/lake``) or an S3 URI (``s3://bucket/prefix``; an
S3-compatible store such as MinIO, Ceph or a local moto server, too). :func:`lake_location`
turns either into a path object with pathlib's API: a local folder is a :class:`pathlib.Path`,
an S3 URI a universal-pathlib ``S3Path`` over s3fs, so
the lake's plain files (progress records, the model registry, the alerts' log) are read and
written the same way in both.

Each client of the bucket takes the standard AWS variables, and nothing else:

* ``AWS_ENDPOINT_URL``: an S3-compatible endpoint (unset: AWS S3). With an endpoint, requests
  use path-style addressing (``http://host:port/bucket/key``), and an ``http://`` endpoint
  is allowed plain HTTP.
* ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``: credentials.
* ``AWS_REGION`` (else ``AWS_DEFAULT_REGION``, else ``us-east-1``).

delta-rs gets them as storage options (:func:`delta_storage_options`), Spark as Hadoop S3A
settings (:func:`spark_s3_conf`; ``s3://`` is served by S3A), s3fs as its own options
(:func:`fs_options`). Secrets are passed to the clients and never logged: :func:`describe`
is what log lines print.

Delta's commit on S3 needs an atomic "create if absent": delta-rs gets it from the store's
conditional put (``If-None-Match``, ``AWS_CONDITIONAL_PUT=etag``), delta-spark from its
single-writer S3 log store (one writer per table, which ticklake's job lock keeps):
docs/architecture.md, "The lake on S3".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from pydantic import PlainSerializer, PlainValidator, SerializationInfo
from upath import UPath

from config.errors import ConfigError, DependencyError

S3_SCHEMES = ("s3", "s3a")
"""URI schemes of an S3 lake; ``s3a://`` (Hadoop's name) is read as ``s3://``."""
DEFAULT_REGION = "us-east-1"
"""Region when neither ``AWS_REGION`` nor ``AWS_DEFAULT_REGION`` is set (AWS's default)."""


def is_object_store(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an S3 URI (``s3://`` or ``s3a://``), not a local path."""
    return urlsplit(str(location)).scheme in S3_SCHEMES


def lake_location(location: str | os.PathLike[str],
                  env: Mapping[str, str] | None = None) -> Path:
    """The lake (or a path in it) as a path object: a local :class:`pathlib.Path`, or an S3
    path (universal-pathlib ``S3Path``, pathlib's API over s3fs) for ``s3://bucket/prefix``.

    An S3 path carries the endpoint and credentials of ``env`` (default ``os.environ``): see
    the module docstring. A path object that is already an S3 path is returned as it is.

    Raises:
        ConfigError: a URI of another scheme (``gs://``, ``http://``...), or an S3 URI
            without a bucket.
    """
    if isinstance(location, UPath) and is_object_store(location):
        return cast(Path, location)
    text = str(location)
    parts = urlsplit(text)
    if parts.scheme in S3_SCHEMES:
        if not parts.netloc:
            raise ConfigError(f"lake {text!r} has no bucket: give s3://BUCKET[/PREFIX]")
        uri = f"s3://{parts.netloc}{parts.path.rstrip('/')}"
        # not a pathlib.Path at run time, but pathlib's API: typed as one for the callers
        return cast(Path, UPath(uri, **fs_options(env)))
    if parts.scheme == "file":
        return Path(parts.path)
    if len(parts.scheme) > 1:  # "C:" style drive letters are one letter
        raise ConfigError(f"lake {text!r}: only a local folder or s3://BUCKET[/PREFIX] is "
                          "supported")
    return Path(text)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to the lake file ``path`` so that a reader sees the old or the new
    content, never a part: a temporary file then a rename on a local disk; one PUT on S3
    (an object is replaced whole)."""
    if is_object_store(path):
        path.write_text(text)
        return
    tmp = path.with_name(f".{path.name}.ticklake.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def table_uri(path: str | os.PathLike[str]) -> str:
    """The string delta-rs and Spark are given for a table or file of the lake: the absolute
    local path, or ``s3://bucket/key`` (Spark reads ``s3://`` with S3A: :func:`spark_s3_conf`)."""
    if is_object_store(path):
        parts = urlsplit(str(path))
        return f"s3://{parts.netloc}{parts.path.rstrip('/')}"
    return str(Path(str(path).removeprefix("file://")).resolve())


_AWS_VARIABLES = {"endpoint": "AWS_ENDPOINT_URL", "key": "AWS_ACCESS_KEY_ID",
                  "secret": "AWS_SECRET_ACCESS_KEY", "token": "AWS_SESSION_TOKEN"}


def _aws(env: Mapping[str, str] | None) -> dict[str, str]:
    """The set AWS variables of ``env`` (default ``os.environ``) under short names, with the
    region always there."""
    env = os.environ if env is None else env
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    found = {"region": region}
    for key, name in _AWS_VARIABLES.items():
        if env.get(name):
            found[key] = env[name]
    return found


def delta_storage_options(path: str | os.PathLike[str],
                          env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """delta-rs' storage options for ``path``: None for a local path; for an S3 path, the
    AWS variables of ``env`` (default ``os.environ``) as delta-rs' ``AWS_*`` options, with
    ``AWS_ALLOW_HTTP`` for an ``http://`` endpoint and ``AWS_CONDITIONAL_PUT=etag`` (Delta's
    atomic commit through the store's conditional put) unless ``env`` chose a locking
    provider or ``AWS_S3_ALLOW_UNSAFE_RENAME``."""
    if not is_object_store(path):
        return None
    env = os.environ if env is None else env
    aws = _aws(env)
    options = {"AWS_REGION": aws["region"]}
    options.update({name: aws[key] for key, name in _AWS_VARIABLES.items() if key in aws})
    if aws.get("endpoint", "").startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    if not (env.get("AWS_S3_LOCKING_PROVIDER") or env.get("AWS_S3_ALLOW_UNSAFE_RENAME")):
        options["AWS_CONDITIONAL_PUT"] = env.get("AWS_CONDITIONAL_PUT", "etag")
    for name in ("AWS_S3_LOCKING_PROVIDER", "AWS_S3_ALLOW_UNSAFE_RENAME", "DELTA_DYNAMO_TABLE_NAME"):
        if env.get(name):
            options[name] = env[name]
    return options


def fs_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """s3fs' options (``S3FileSystem`` keyword arguments) from the AWS variables of ``env``
    (default ``os.environ``): endpoint, credentials, region, path-style addressing with an
    endpoint, and no listings cache (s3fs would otherwise answer a folder's listing from its
    first one, in a process that runs for days)."""
    aws = _aws(env)
    options: dict[str, Any] = {k: aws[k] for k in ("key", "secret", "token") if k in aws}
    options["client_kwargs"] = {"region_name": aws["region"]}
    options["use_listings_cache"] = False  # a listing must see what other processes wrote
    if "endpoint" in aws:
        options["endpoint_url"] = aws["endpoint"]
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return options


def spark_s3_conf(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Spark settings (``spark.hadoop.fs.s3a.*``, Hadoop S3A's option names) for the AWS
    variables of ``env`` (default ``os.environ``): the endpoint with path-style access and,
    for ``http://``, SSL off; the region. (``s3://`` is served by S3A through
    :data:`config.jars.S3_SESSION_CONF`.) Credentials are not copied:
    S3A's default credential chain reads ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
    ``AWS_SESSION_TOKEN`` from the environment of each JVM itself."""
    aws = _aws(env)
    conf = {"spark.hadoop.fs.s3a.endpoint.region": aws["region"]}
    endpoint = aws.get("endpoint")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    return conf


def require_lake(location: str | os.PathLike[str], env: Mapping[str, str] | None = None,
                 timeout_s: float = 5.0) -> None:
    """Check that an S3 lake's bucket answers (S3's ``HeadBucket``, one attempt of at most
    ``timeout_s`` to connect); nothing is checked for a local lake.

    Raises:
        DependencyError: one line naming what to fix: the endpoint cannot be reached, the
            bucket does not exist, the credentials are missing or refused.
    """
    if not is_object_store(location):
        return
    import boto3  # type: ignore[import-untyped]
    import botocore.exceptions  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    aws = _aws(env)
    bucket = urlsplit(str(location)).netloc
    where = aws.get("endpoint", "AWS S3")
    client = boto3.client(
        "s3", endpoint_url=aws.get("endpoint"), region_name=aws["region"],
        aws_access_key_id=aws.get("key"), aws_secret_access_key=aws.get("secret"),
        aws_session_token=aws.get("token"),
        config=Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                      retries={"max_attempts": 1},
                      s3={"addressing_style": "path" if "endpoint" in aws else "auto"}))
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.NoCredentialsError:
        raise DependencyError(f"no S3 credentials for the lake {location}: set "
                              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise DependencyError(f"the bucket {bucket!r} of the lake {location} does not "
                                  f"exist at {where}: create it (aws s3 mb s3://{bucket}) or "
                                  "give another --lake") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise DependencyError(f"{where} refused access to the bucket {bucket!r} ({code}): "
                                  "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
                                  "AWS_SESSION_TOKEN") from None
        raise DependencyError(f"{where} answered {code} for the bucket {bucket!r}") from None
    except botocore.exceptions.BotoCoreError as exc:  # connection refused, DNS, timeout
        raise DependencyError(f"cannot reach the S3 endpoint {where} of the lake {location} "
                              f"({type(exc).__name__}): start it, or fix AWS_ENDPOINT_URL"
                              ) from None


def describe(env: Mapping[str, str] | None = None) -> str:
    """What a log line says of the S3 settings: endpoint, region and whether credentials are
    set (never their values)."""
    aws = _aws(env)
    creds = "credentials from AWS_ACCESS_KEY_ID" if "key" in aws else "no AWS_ACCESS_KEY_ID"
    return (f"S3 endpoint {aws.get('endpoint', 'AWS default')}, region {aws['region']}, "
            f"{creds}{' and AWS_SESSION_TOKEN' if 'token' in aws else ''}")


def _serialize(path: Path, info: SerializationInfo) -> Path | str:
    return str(path) if info.mode == "json" else path


LakePath = Annotated[Path, PlainValidator(lambda value: lake_location(value)),
                     PlainSerializer(_serialize, return_type=Any)]
"""A settings field holding a lake location (:func:`lake_location`): a local folder or an S3
URI; ``model_dump`` keeps the path object, JSON gives its string."""
