"""The Elasticsearch the tests run (tests/peers/elasticsearch/pom.xml) and the one the lab runs (compose) agree.

Maven Central serves Elasticsearch's server jars only up to 9.5.4 (9.5.5 and 9.5.6 are not published there), while the
lab pins 9.5.6 for its fixes. So the two may differ in the patch number only, and only by the gap stated here: when
Maven Central catches up, set the pom to the lab's tag and empty ``MAVEN_CENTRAL_LAGS``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .files import REPO, services

POM = REPO / "tests" / "peers" / "elasticsearch" / "pom.xml"
MAVEN = "{http://maven.apache.org/POM/4.0.0}"
# lab tag -> the newest patch of that line Maven Central serves (checked with `mvn dependency:get`, 2026-12-01).
MAVEN_CENTRAL_LAGS = {"9.5.6": "9.5.4"}


def peer_version() -> str:
    node = ET.parse(POM).getroot().find(f"{MAVEN}properties/{MAVEN}elasticsearch.version")
    assert node is not None, "pom.xml lost its elasticsearch.version property"
    assert node.text, "pom.xml's elasticsearch.version is empty"
    return node.text


def image_tag(service: str) -> str:
    image = str(services()[service]["image"])
    match = re.fullmatch(r"docker\.elastic\.co/[a-z]+/[a-z]+:(\d+\.\d+\.\d+)", image)
    assert match, f"{service} is not pinned to an exact elastic.co tag: {image}"
    return match.group(1)


def test_kibana_runs_the_same_version_as_elasticsearch() -> None:
    assert image_tag("kibana") == image_tag("elasticsearch")


def test_the_test_peer_is_the_labs_version_or_the_newest_maven_central_has() -> None:
    lab = image_tag("elasticsearch")
    assert peer_version() == MAVEN_CENTRAL_LAGS.get(lab, lab)


def test_the_peer_and_the_lab_share_major_and_minor() -> None:
    assert peer_version().split(".")[:2] == image_tag("elasticsearch").split(".")[:2]
