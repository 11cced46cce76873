"""A real Elasticsearch node (assembled by scripts/install-peers) on free loopback ports, as a non-root user."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from harness.backends import free_port
from tests.peers.process import PeerProcess, wait_until

NOBODY = 65534  # CI runs as root, and Elasticsearch refuses to: the node then runs as nobody


def node_home(server_args: str) -> Path:
    """The node's home: ELASTICSEARCH_BIN is <home>/bin/server-args."""
    return Path(server_args).resolve().parent.parent


def jvm_options(home: Path, tmp: Path) -> list[str]:
    """What the launcher (not on Maven Central) would pass the JVM, less what this node cannot use.

    Native access is granted only to the modules that need it (org.elasticsearch.foreign loads libzstd); the
    vector library is off, since its native part ships only in the distribution.
    """
    bridge = next((home / "lib" / "entitlement-bridge").glob("*.jar"))
    return [
        "-Xms512m",
        "-Xmx512m",
        "-Xss1m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Dfile.encoding=UTF-8",
        "-Djava.locale.providers=CLDR",
        f"-Djava.io.tmpdir={tmp}",
        "-Dio.netty.noUnsafe=true",
        "-Dio.netty.noKeySetOptimization=true",
        "-Dio.netty.recycler.maxCapacityPerThread=0",
        "-Dlog4j.shutdownHookEnabled=false",
        "-Dlog4j2.disable.jmx=true",
        "-Dlog4j2.formatMsgNoLookups=true",
        f"-Des.path.home={home}",
        "-Des.distribution.type=tar",
        "-Dorg.elasticsearch.nativeaccess.enableVectorLibrary=false",
        "--enable-native-access=org.elasticsearch.nativeaccess,org.apache.lucene.core,org.elasticsearch.foreign",
        "--illegal-native-access=deny",
        # Entitlements: the server attaches lib/entitlement-agent to itself; the bridge is patched into java.base.
        "-XX:+EnableDynamicAgentLoading",
        "-Djdk.attach.allowAttachSelf=true",
        f"--patch-module=java.base={bridge}",
        "--add-exports=java.base/org.elasticsearch.entitlement.bridge="
        "org.elasticsearch.entitlement,java.logging,java.net.http,java.naming,jdk.net",
        "--add-opens=org.apache.lucene.core/org.apache.lucene.codecs.lucene99=org.elasticsearch.server",
        "--add-opens=org.apache.lucene.core/org.apache.lucene.internal.vectorization=org.elasticsearch.server",
        f"--module-path={home / 'lib'}",
        "--add-modules=jdk.net",
        "--add-modules=ALL-MODULE-PATH",
        "-m",
        "org.elasticsearch.server/org.elasticsearch.bootstrap.Elasticsearch",
    ]


def _private_copy(home: Path, workdir: Path) -> Path:
    """The node's home where its user can read it (the cache may sit under root's 0700 home); hard links if possible."""
    target = workdir / "home"

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(home, target, symlinks=True, copy_function=link_or_copy)
    return target


class ElasticsearchPeer:
    """One single-node cluster in ``workdir``; stopped by its PID."""

    def __init__(self, server_args: str, java: str, workdir: Path) -> None:
        as_root = os.geteuid() == 0
        home = _private_copy(node_home(server_args), workdir) if as_root else node_home(server_args)
        for sub in ("data", "logs", "tmp"):
            (workdir / sub).mkdir()
        if as_root:
            for path in (workdir, *workdir.glob("*")):
                os.chown(path, NOBODY, NOBODY)
            workdir.chmod(0o755)
        self.port = free_port()
        settings = {
            "cluster.name": "svc-test",
            "node.name": "svc-test-node",
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": str(free_port()),
            "discovery.type": "single-node",
            "path.data": str(workdir / "data"),
        }
        launcher = [str(home / "bin" / "server-args"), str(home), str(workdir / "logs")]
        # What the real launcher pipes on the server's stdin; the pipe stays open, since end-of-stream means "stop".
        args_bytes = subprocess.run(
            [*launcher, *(f"{k}={v}" for k, v in settings.items())], capture_output=True, check=True
        ).stdout
        self.process = PeerProcess(
            "elasticsearch",
            [java, *jvm_options(home, workdir / "tmp")],
            workdir,
            env={"LIBFFI_TMPDIR": str(workdir / "tmp")},
            stdin=args_bytes,
            user=NOBODY if as_root else None,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_healthy(self, timeout: float = 180.0) -> ElasticsearchPeer:
        """Poll cluster health until green (one node, no replicas), failing at once if the node died."""

        def green() -> bool:
            answer = self.client.get("/_cluster/health", timeout=5)
            return answer.status_code == 200 and answer.json()["status"] == "green"

        wait_until(green, timeout, "elasticsearch cluster health green", interval=0.5, alive=self.process.check_alive)
        return self

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One JSON request; returns (status, parsed body)."""
        answer = self.client.request(method, path, json=body)
        return answer.status_code, answer.json()

    def stop(self) -> int:
        """SIGTERM by PID (the node shuts down cleanly on it), SIGKILL if it hangs; returns the exit code."""
        self.client.close()
        return self.process.stop(timeout=30)
