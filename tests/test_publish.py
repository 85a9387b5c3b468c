"""Publishing to a versioned local store and (as far as it goes offline) to the Hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pmc_data.errors import PublishError
from pmc_data.publish import (
    plan_hub_commit,
    publish_to_hub,
    publish_to_store,
)
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from tests.conftest import DEMO_INPUTS, run_cli

#: What a demo build publishes: never rejects/, which can hold excluded records.
PUBLISHED = [
    "README.md",
    "data/train-00000-of-00001.parquet",
    "manifest.json",
    "report/funnel.png",
    "report/lengths.png",
    "report/licenses.png",
    "report/near_dedup-clusters.parquet",
    "report/sources.png",
]


def build_demo(folder: Path, version: str) -> Path:
    recipe = load_recipe(
        "demo",
        overrides=[f"version={version}"],
        inputs={"docs": str(DEMO_INPUTS)},
        require_inputs=True,
    )
    build(recipe, folder, BuildOptions(progress=False))
    return folder


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("builds")
    return build_demo(root / "v1", "0.1.0"), build_demo(root / "v2", "0.2.0")


def test_local_store_keeps_versions_and_refuses_republishing(builds, tmp_path):
    import datasets

    v1, v2 = builds
    store = tmp_path / "store"
    assert publish_to_store(v1, str(store)) == f"{store}/demo/v0.1.0"
    with pytest.raises(PublishError, match="already exists"):
        publish_to_store(v1, str(store))
    publish_to_store(v2, str(store))
    assert sorted(p.name for p in (store / "demo").iterdir()) == ["v0.1.0", "v0.2.0"]
    published = sorted(
        p.relative_to(store / "demo" / "v0.1.0").as_posix()
        for p in (store / "demo" / "v0.1.0").rglob("*")
        if p.is_file()
    )
    assert published == PUBLISHED
    for version in ("v0.1.0", "v0.2.0"):
        loaded = datasets.load_dataset(str(store / "demo" / version), split="train")
        assert len(loaded) == 13  # no test set given: nothing decontaminated
    assert '"version": "0.1.0"' in (v1 / "publications.json").read_text()


def test_cli_publish_to_store_and_version_check(builds, tmp_path):
    v1, _ = builds
    store = tmp_path / "store"
    wrong = run_cli("publish", str(v1), "--to", str(store), "--version", "0.9.0")
    assert wrong.returncode == 2
    assert "was built as version 0.1.0, not 0.9.0" in wrong.stderr
    ok = run_cli("publish", str(v1), "--to", str(store), "--name", "demo-corpus")
    assert ok.returncode == 0, ok.stderr
    assert (store / "demo-corpus" / "v0.1.0" / "manifest.json").is_file()
    again = run_cli("publish", str(v1), "--to", str(store), "--name", "demo-corpus")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_hub_commit_plan(builds):
    v1, _ = builds
    existing = [
        ".gitattributes",
        "README.md",
        "data/train-00000-of-00003.parquet",
        "data/train-00001-of-00003.parquet",
        "data/train-00002-of-00003.parquet",
        "report/old.png",
        "notes/keep.md",
    ]
    plan = plan_hub_commit(v1, "org/demo", None, existing, tags=["v0.0.9"])
    assert plan.tag == "v0.1.0"
    assert plan.message.startswith("demo v0.1.0 (pmc-data fingerprint ")
    assert [p for p, _ in plan.add] == PUBLISHED
    # Old data files would mix versions under data/train-*: they go in the same commit.
    assert plan.delete == [
        "data/train-00000-of-00003.parquet",
        "data/train-00001-of-00003.parquet",
        "data/train-00002-of-00003.parquet",
        "report/old.png",
    ]
    operations = plan.operations()
    assert len(operations) == len(plan.add) + len(plan.delete)
    with pytest.raises(PublishError, match=r"already has tag v0\.1\.0"):
        plan_hub_commit(v1, "org/demo", "0.1.0", existing, tags=["v0.1.0"])


class RecordingApi:
    """Stands in for HfApi: records calls, answers like the Hub would."""

    def __init__(self, tags=(), files=()):
        self.calls, self.tags, self.files = [], list(tags), list(files)

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def list_repo_refs(self, repo_id, **kwargs):
        class Ref:
            def __init__(self, name):
                self.name = name

        class Refs:
            def __init__(self, tags):
                self.tags = [Ref(t) for t in tags]

        return Refs(self.tags)

    def list_repo_files(self, repo_id, **kwargs):
        return self.files

    def create_commit(self, repo_id, operations, **kwargs):
        self.calls.append(("create_commit", repo_id, [o.path_in_repo for o in operations], kwargs))

        class Info:
            oid = "c0ffee" * 6 + "abcd"

        return Info()

    def create_tag(self, repo_id, **kwargs):
        self.calls.append(("create_tag", repo_id, kwargs))


def test_publish_to_hub_calls(builds):
    v1, _ = builds
    api = RecordingApi(files=["data/train-00000-of-00002.parquet"])
    commit = publish_to_hub(v1, "org/demo", api=api)
    assert commit == "c0ffee" * 6 + "abcd"
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "create_commit", "create_tag"]
    assert api.calls[0][2] == {"repo_type": "dataset", "exist_ok": True, "private": False}
    assert "data/train-00000-of-00002.parquet" in api.calls[1][2]
    assert api.calls[2][2]["tag"] == "v0.1.0" and api.calls[2][2]["revision"] == commit
    refused = RecordingApi(tags=["v0.1.0"])
    with pytest.raises(PublishError):
        publish_to_hub(v1, "org/demo", api=refused)
    assert [c[0] for c in refused.calls] == ["create_repo"]


@pytest.mark.skipif(
    not (os.environ.get("HF_TOKEN") and os.environ.get("PMC_DATA_HUB_TEST_REPO")),
    reason="a real push needs HF_TOKEN and PMC_DATA_HUB_TEST_REPO (a scratch dataset repo)",
)
def test_real_push(tmp_path):
    import time

    from huggingface_hub import HfApi

    version = f"0.0.{int(time.time())}"
    folder = build_demo(tmp_path / "push", version)
    repo = os.environ["PMC_DATA_HUB_TEST_REPO"]
    commit = publish_to_hub(folder, repo)
    tags = [t.name for t in HfApi().list_repo_refs(repo, repo_type="dataset").tags]
    assert f"v{version}" in tags and len(commit) == 40
