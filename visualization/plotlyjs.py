"""plotly.js' finance partial bundle, which the dashboard draws its charts with.

Streamlit's own ``st.plotly_chart`` ships the whole of plotly.js (a 4.7 MB chunk of its
frontend), which a new browser must evaluate before its first chart (what that costs:
docs/architecture.md, "Measured facts"; docs/benchmarks.md, "Dashboard"). The dashboard's
figures use three trace types (candlestick, bar, scatter), all in the finance bundle
(1.3 MB), which Plotly publishes on npm as ``plotly.js-finance-dist-min`` (MIT licence). It is
not committed: ``scripts/setup.sh`` fetches it with ``python -m visualization.plotlyjs``,
pinned by version and SHA-256, into :data:`BUNDLE` (Streamlit serves that folder at
``app/static/``, ``server.enableStaticServing``). Without it the dashboard falls back to
``st.plotly_chart`` (:mod:`visualization.plot`).

    python -m visualization.plotlyjs            # fetch it if missing (or not the pinned one)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

from tenacity import retry, stop_after_attempt, wait_exponential

VERSION = "4.1.0"
"""The bundle's plotly.js version (plotly 7.1.0, the Python package, writes figures for
plotly.js 4.1)."""
TARBALL = ("https://registry.npmjs.org/plotly.js-finance-dist-min/-/"
           f"plotly.js-finance-dist-min-{VERSION}.tgz")
"""The npm registry's tarball of :data:`VERSION`."""
TARBALL_SHA256 = "b93953129a3595bbebb69b6381fbf9bea7e29bb7c566381f1d85d7dd6143ae62"
"""SHA-256 of :data:`TARBALL`, as fetched on 2026-12-04 (its npm ``shasum``: 7aaf2307...)."""
MEMBER = "package/plotly-finance.min.js"
"""The bundle inside the tarball."""
STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Streamlit's static folder for ``visualization/app.py`` (served at ``app/static/``)."""
BUNDLE = STATIC_DIR / "plotly-finance.min.js"
"""Where the bundle is kept."""
BUNDLE_URL = "app/static/plotly-finance.min.js"
"""The bundle's address relative to the dashboard's pages."""


class BundleError(RuntimeError):
    """The tarball could not be fetched, or is not the pinned one."""


def _stamp(bundle: Path) -> Path:
    """The file beside ``bundle`` naming the SHA-256 of the tarball it came from."""
    return bundle.with_name(bundle.name + ".sha256")


def installed(bundle: Path = BUNDLE, sha256: str = TARBALL_SHA256) -> bool:
    """True when ``bundle`` was written by :func:`fetch` from the tarball ``sha256`` names."""
    try:
        return bundle.stat().st_size > 0 and _stamp(bundle).read_text().strip() == sha256
    except OSError:
        return False


@retry(stop=stop_after_attempt(4), wait=wait_exponential(multiplier=1, max=10), reraise=True)
def _download(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body


def fetch(url: str = TARBALL, sha256: str = TARBALL_SHA256, bundle: Path = BUNDLE,
          timeout_s: float = 60.0) -> Path:
    """Download the tarball at ``url``, check its SHA-256 and write its :data:`MEMBER` to
    ``bundle`` (through a temporary file, so a reader never sees half of it).

    Returns:
        ``bundle``.

    Raises:
        BundleError: the download failed after 4 tries (the error says where it went), or
            the tarball's SHA-256 is not ``sha256``, or it holds no :data:`MEMBER`.
    """
    try:
        body = _download(url, timeout_s)
    except OSError as exc:
        raise BundleError(f"could not fetch {url}: {exc} (the npm registry must be reachable; "
                          "without the bundle the dashboard uses st.plotly_chart)") from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != sha256:
        raise BundleError(f"{url}: SHA-256 {digest}, expected {sha256}; nothing written")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        try:
            member = archive.extractfile(MEMBER)
        except KeyError:
            member = None
        if member is None:
            raise BundleError(f"{url} holds no {MEMBER}")
        script = member.read()
    bundle.parent.mkdir(parents=True, exist_ok=True)
    partial = bundle.with_name(bundle.name + ".part")
    partial.write_bytes(script)
    partial.replace(bundle)
    _stamp(bundle).write_text(sha256 + "\n")
    return bundle


def main(argv: list[str] | None = None) -> int:
    """``python -m visualization.plotlyjs [--force]``: fetch the bundle unless it is there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="fetch even if it is there")
    args = parser.parse_args(argv)
    if installed() and not args.force:
        print(f"plotly.js finance bundle {VERSION}: {BUNDLE} (already there)")
        return 0
    try:
        path = fetch()
    except BundleError as exc:
        print(f"plotly.js finance bundle: {exc}", file=sys.stderr)
        return 1
    print(f"plotly.js finance bundle {VERSION}: {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
