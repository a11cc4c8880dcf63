"""visualization.plotlyjs: the finance bundle is written only from a tarball with the pinned
SHA-256, served here by a local HTTP server (no registry)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenacity import wait_none

from tests.conftest import free_port
from visualization import plotlyjs


def tarball(members: dict[str, bytes]) -> bytes:
    """A gzipped tar with ``members`` (name -> content), as npm packs a package."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) of an HTTP server on 127.0.0.1, stopped after the test."""
    root = tmp_path / "registry"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_bundle_is_written_from_a_tarball_with_the_pinned_digest(
        served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    script = b"window.Plotly = {version: 'test'};\n" * 100
    body = tarball({plotlyjs.MEMBER: script, "package/README.md": b"readme"})
    (root / "finance.tgz").write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    bundle = tmp_path / "static" / "plotly-finance.min.js"
    assert not plotlyjs.installed(bundle, digest)

    assert plotlyjs.fetch(f"{base}/finance.tgz", digest, bundle) == bundle
    assert bundle.read_bytes() == script
    assert plotlyjs.installed(bundle, digest)
    assert not plotlyjs.installed(bundle, "0" * 64)  # another pin: fetched again by setup
    assert sorted(p.name for p in bundle.parent.iterdir()) == [
        "plotly-finance.min.js", "plotly-finance.min.js.sha256"]  # no .part left


def test_a_tarball_with_another_digest_or_no_bundle_writes_nothing(
        served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    body = tarball({plotlyjs.MEMBER: b"evil()"})
    (root / "finance.tgz").write_bytes(body)
    bundle = tmp_path / "static" / "plotly-finance.min.js"
    with pytest.raises(plotlyjs.BundleError, match="SHA-256 .* expected 0{64}"):
        plotlyjs.fetch(f"{base}/finance.tgz", "0" * 64, bundle)
    assert not bundle.exists()

    empty = tarball({"package/README.md": b"no bundle"})
    (root / "empty.tgz").write_bytes(empty)
    with pytest.raises(plotlyjs.BundleError, match="holds no package/plotly-finance.min.js"):
        plotlyjs.fetch(f"{base}/empty.tgz", hashlib.sha256(empty).hexdigest(), bundle)
    assert not bundle.exists()


def test_an_unreachable_registry_names_the_address(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(plotlyjs, "_download", plotlyjs._download.retry_with(wait=wait_none()))
    url = f"http://127.0.0.1:{free_port()}/finance.tgz"  # nothing listens
    with pytest.raises(plotlyjs.BundleError, match=f"could not fetch {url}"):
        plotlyjs.fetch(url, "0" * 64, tmp_path / "plotly-finance.min.js", timeout_s=2)
    assert not (tmp_path / "plotly-finance.min.js").exists()
