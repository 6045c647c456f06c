"""Build a real kube-apiserver and fetch etcd for the Kubernetes integration tests.

No registry ships a kube-apiserver binary, but Debian bookworm's source package `kubernetes` is
the complete v1.20.2 tree with its vendored modules, so it builds offline with Debian's Go 1.19.
The result (kube-apiserver, etcd, etcdctl) is cached outside the work tree, so only the first
run on a machine pays the few minutes of compiling.

Apt is driven with a private configuration (its own source list, package lists and cache) whose
lines are derived from the machine's own Debian sources, adding `deb-src`; the system's apt setup
is never changed.

Usage: python3 tests/kube/build.py [--cache DIR]; prints the directory holding the binaries.
Exit status 0 when the binaries are ready, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

KUBERNETES_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
BINARY_PACKAGES = (
    "golang-1.19-go",
    "golang-1.19-src",
    "golang-github-modern-go-reflect2-dev",
    "etcd-server",
    "etcd-client",
)
BINARIES = ("kube-apiserver", "etcd", "etcdctl")
APT_SOURCE_DIRS = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


class BuildError(Exception):
    """A step that cannot succeed on this machine; the message says which and why."""


def default_cache() -> Path:
    """Outside the work tree, so a fresh clone on the same machine reuses the build."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "controlplane" / "kube-1.20.2"


def ready(cache: Path) -> bool:
    """True when every binary the tests start is present and executable."""
    return all(os.access(cache / "bin" / name, os.X_OK) for name in BINARIES)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run one step, echoing it; a failure names the command."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    result = subprocess.run(cmd, cwd=cwd, env=env, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])} ... exited with {result.returncode}")


# --- apt sources, derived from the machine's own configuration -------------------------------


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """Split a deb822 `.sources` file into field maps (comments dropped, continuation joined)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif raw[0].isspace() and key:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas


def lines_from_deb822(text: str) -> list[str]:
    """One-line `deb` and `deb-src` entries for every enabled Debian stanza."""
    lines: list[str] = []
    for stanza in deb822_stanzas(text):
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes") == "no":
            continue
        options = f"[signed-by={stanza['signed-by']}] " if "signed-by" in stanza else ""
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                tail = f"{uri} {suite} {stanza.get('components', '')}".strip()
                lines += [f"deb {options}{tail}", f"deb-src {options}{tail}"]
    return lines


def lines_from_list(text: str) -> list[str]:
    """The `deb` lines of a one-line-style list, each also as `deb-src`."""
    lines: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].strip()
        if words.startswith("deb "):
            lines += [words, "deb-src " + words[4:]]
    return lines


def is_debian(line: str) -> bool:
    """Only Debian's own archive carries the packages; third-party repositories are skipped."""
    return "debian" in line and "/debian" in line.split("]")[-1]


def derived_sources() -> list[str]:
    """Every enabled Debian source of this machine, as both binary and source lines."""
    found: list[str] = []
    for entry in APT_SOURCE_DIRS:
        files = sorted(entry.iterdir()) if entry.is_dir() else [entry]
        for path in files:
            if not path.is_file():
                continue
            if path.suffix == ".sources":
                found += lines_from_deb822(path.read_text())
            elif path.suffix == ".list":
                found += lines_from_list(path.read_text())
    debian = [line for line in dict.fromkeys(found) if is_debian(line)]
    if not debian:
        raise BuildError("no Debian archive in this machine's apt sources")
    return debian


def apt_options(work: Path) -> list[str]:
    """A private apt configuration in `work`, leaving the system's lists untouched."""
    apt = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "parts"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text("\n".join(derived_sources()) + "\n")
    # As root, apt drops to the _apt user to download, which cannot write into this folder.
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    return [
        *sandbox,
        "-o",
        f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o",
        f"Dir::Etc::SourceParts={apt / 'parts'}",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
    ]


# --- download and unpack -----------------------------------------------------------------------


def download(work: Path) -> None:
    """The kubernetes source package and the .debs of Go 1.19, reflect2 and etcd."""
    options = apt_options(work)
    run(["apt-get", *options, "-qq", "update"])
    downloads = work / "downloads"
    downloads.mkdir(exist_ok=True)
    run(["apt-get", *options, "-qq", "source", "--download-only", f"kubernetes={KUBERNETES_VERSION}"], cwd=downloads)
    run(["apt-get", *options, "-qq", "download", *BINARY_PACKAGES], cwd=downloads)


def unpack(work: Path) -> Path:
    """Unpack the .debs into `work/root` and the source tree into `work/src`; returns the tree."""
    root = work / "root"
    root.mkdir(exist_ok=True)
    for deb in sorted((work / "downloads").glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir()
    orig = next((work / "downloads").glob("kubernetes_*.orig.tar.*"), None)
    if orig is None:
        raise BuildError("the kubernetes source package did not download")
    with tarfile.open(orig) as archive:
        archive.extractall(src, filter="tar")
    tops = [p for p in src.iterdir() if p.is_dir()]
    return tops[0] if len(tops) == 1 else src


def replace_reflect2(tree: Path, root: Path) -> None:
    """The vendored reflect2 1.0.1 crashes under Go >= 1.18 (SIGSEGV in mapiterinit): use 1.0.2."""
    vendored = tree / "vendor/github.com/modern-go/reflect2"
    debian = root / "usr/share/gocode/src/github.com/modern-go/reflect2"
    if not debian.is_dir():
        raise BuildError(f"Debian's reflect2 sources are missing at {debian}")
    shutil.rmtree(vendored)
    shutil.copytree(debian, vendored, ignore=shutil.ignore_patterns("*_test.go", "test*", ".*"))


# --- build ------------------------------------------------------------------------------------


def ensure_rsync() -> None:
    """Kubernetes' make copies with rsync; install Debian's when it is missing."""
    if shutil.which("rsync"):
        return
    run(["apt-get", "-qq", "update"])
    run(["apt-get", "install", "-y", "-qq", "rsync"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def go_env(root: Path, work: Path) -> dict[str, str]:
    """Offline, vendored, static: nothing is fetched while compiling."""
    goroot = root / "usr/lib/go-1.19"
    return {
        **os.environ,
        "GOROOT": str(goroot),
        "PATH": f"{goroot / 'bin'}:{os.environ.get('PATH', '')}",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=vendor",
        "CGO_ENABLED": "0",
        "GOCACHE": str(work / "gocache"),
        "GOPATH": str(work / "gopath"),
    }


def compile_apiserver(tree: Path, root: Path, work: Path) -> Path:
    """`make WHAT=cmd/kube-apiserver`, stripped; returns the binary."""
    run(["make", "WHAT=cmd/kube-apiserver", "GOLDFLAGS=-s -w"], cwd=tree, env=go_env(root, work))
    built = sorted(tree.glob("_output/**/kube-apiserver"))
    if not built:
        raise BuildError("make finished but produced no kube-apiserver")
    return built[0]


def install(cache: Path, apiserver: Path, root: Path) -> None:
    """Copy the three binaries into `cache/bin` (written last, so `ready` means complete)."""
    staging = cache / "bin.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    shutil.copy2(apiserver, staging / "kube-apiserver")
    for name in ("etcd", "etcdctl"):
        found = next(iter(root.glob(f"usr/bin/{name}")), None)
        if found is None:
            raise BuildError(f"the etcd packages did not contain usr/bin/{name}")
        shutil.copy2(found, staging / name)
    final = cache / "bin"
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def build(cache: Path) -> None:
    """Every step, in a scratch folder beside the cache that is removed on success."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise BuildError("apt-get and dpkg-deb are needed (a Debian machine)")
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    download(work)
    tree = unpack(work)
    root = work / "root"
    replace_reflect2(tree, root)
    ensure_rsync()
    install(cache, compile_apiserver(tree, root, work), root)
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Build when the cache lacks a binary; print the bin directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args(argv)
    if not ready(args.cache):
        try:
            build(args.cache)
        except (BuildError, OSError) as exc:
            print(f"kube-apiserver build failed: {exc}", file=sys.stderr)
            return 1
    print(args.cache / "bin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
