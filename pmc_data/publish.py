"""Publishing a built dataset folder: to the Hugging Face Hub, or to a versioned store.

What is published: ``data/``, ``README.md`` (the card), ``manifest.json`` and ``report/``.
``rejects/`` stays local: it holds records a license policy excluded, which may not be
redistributed.

Hub: the repo is created if needed, the files of the previous version that this one no
longer has are deleted in the same commit (so ``data/train-*`` never mixes versions), and
the commit is tagged ``vX.Y.Z``. Tokens come from huggingface_hub's usual sources
(``HF_TOKEN``, ``huggingface-cli login``); this module never reads, prints or writes one.

Store (``--to PATH``, any fsspec URL): ``PATH/NAME/vX.Y.Z/`` holds each version side by side,
for air-gapped sites; ``load_dataset("PATH/NAME/vX.Y.Z")`` reads one.

Publishing a version that already exists is refused, in both places.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec

from pmc_data.errors import PublishError
from pmc_data.recipe import SEMVER

PUBLISHED = ("data", "report")
PUBLISHED_FILES = ("README.md", "manifest.json")
PUBLICATIONS = "publications.json"


def dataset_files(folder: Path) -> list[str]:
    """The files to publish, relative to ``folder``, sorted."""
    if not (folder / "manifest.json").is_file():
        raise PublishError(f"{folder} has no manifest.json: build it first with pmc-data build")
    files = [name for name in PUBLISHED_FILES if (folder / name).is_file()]
    for sub in PUBLISHED:
        if (folder / sub).is_dir():
            files += [
                p.relative_to(folder).as_posix() for p in (folder / sub).rglob("*") if p.is_file()
            ]
    return sorted(files)


def resolve_version(folder: Path, version: str | None) -> str:
    """The version to publish: the build's own, which ``--version`` may only confirm."""
    built = json.loads((folder / "manifest.json").read_text())["version"]
    if version is None:
        return built
    version = version.removeprefix("v")
    if not SEMVER.match(version):
        raise PublishError(f"--version {version!r} is not a semantic version (X.Y.Z)")
    if version != built:
        raise PublishError(
            f"{folder} was built as version {built}, not {version}: the card and manifest "
            f"say {built}. Rebuild with --set version={version} to publish {version}."
        )
    return version


def record_publication(folder: Path, entry: dict) -> None:
    """Append to ``publications.json`` beside the build (kept local, never published)."""
    path = folder / PUBLICATIONS
    entries = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*entries, entry], indent=2) + "\n")


def publish_to_store(
    folder: Path, store: str, name: str | None = None, version: str | None = None
) -> str:
    """Copy the dataset to ``store/NAME/vX.Y.Z/``; returns that location.

    The copy goes to a hidden staging folder first and is moved into place whole, so a
    reader never sees half a version.
    """
    folder = Path(folder)
    files = dataset_files(folder)
    version = resolve_version(folder, version)
    name = name or json.loads((folder / "manifest.json").read_text())["name"]
    fs, root = fsspec.core.url_to_fs(store)
    root = root.rstrip("/")
    target = f"{root}/{name}/v{version}"
    if fs.exists(target):
        raise PublishError(
            f"{name} v{version} already exists in {store}; published versions are immutable: "
            "bump the recipe's version and rebuild"
        )
    staging = f"{root}/{name}/.v{version}.partial-{uuid.uuid4().hex[:8]}"
    for relative in files:
        fs.makedirs(f"{staging}/{relative}".rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(folder / relative), f"{staging}/{relative}")
    fs.mv(staging, target, recursive=True)
    location = f"{store.rstrip('/')}/{name}/v{version}"
    record_publication(folder, {"target": location, "version": version})
    return location


@dataclass
class HubCommitPlan:
    """Everything one Hub publication does, built without touching the network."""

    repo_id: str
    version: str
    tag: str
    message: str
    add: list[tuple[str, Path]]
    delete: list[str]

    def operations(self) -> list:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        adds = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in self.add
        ]
        return adds + [CommitOperationDelete(path_in_repo=p) for p in self.delete]


def plan_hub_commit(
    folder: Path, repo_id: str, version: str | None, existing: list[str], tags: list[str]
) -> HubCommitPlan:
    """What to add, delete and tag, given the repo's current files and tags."""
    folder = Path(folder)
    files = dataset_files(folder)
    version = resolve_version(folder, version)
    tag = f"v{version}"
    if tag in tags:
        raise PublishError(
            f"{repo_id} already has tag {tag}; published versions are immutable: "
            "bump the recipe's version and rebuild"
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    stale = [path for path in existing if path.split("/", 1)[0] in PUBLISHED and path not in files]
    message = f"{manifest['name']} {tag} (pmc-data fingerprint {manifest['fingerprint'][:12]})"
    return HubCommitPlan(
        repo_id, version, tag, message, [(p, folder / p) for p in files], sorted(stale)
    )


#: Licenses whose content may be used but not redistributed: never published publicly.
NOT_REDISTRIBUTABLE = frozenset({"LicenseRef-UMLS"})


def publish_to_hub(
    folder: Path, repo_id: str, version: str | None = None, private: bool = False, api=None
) -> str:
    """Upload to the Hub as one commit tagged ``vX.Y.Z``; returns the commit id."""
    from huggingface_hub import HfApi

    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if NOT_REDISTRIBUTABLE & set(manifest["totals"]["licenses"]) and not private:
        raise PublishError(
            f"{folder} has rows under {', '.join(sorted(NOT_REDISTRIBUTABLE))}, which may not be "
            "redistributed: publish with --private, or build without those inputs"
        )
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    tags = [ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags]
    existing = api.list_repo_files(repo_id, repo_type="dataset")
    plan = plan_hub_commit(Path(folder), repo_id, version, existing, tags)
    info = api.create_commit(
        repo_id, plan.operations(), commit_message=plan.message, repo_type="dataset"
    )
    api.create_tag(
        repo_id, tag=plan.tag, revision=info.oid, repo_type="dataset", tag_message=plan.message
    )
    record_publication(
        Path(folder),
        {
            "target": f"hf://datasets/{repo_id}",
            "version": plan.version,
            "tag": plan.tag,
            "commit": info.oid,
        },
    )
    return info.oid
