"""The dataset card (``README.md``): Hub metadata front matter plus a generated body.

Templates live in ``datacards/<name>.md``: YAML front matter with what a person decides
(``pretty_name``, ``task_categories``, ``tags``, ``language``), then a Jinja2 body that
describes the dataset and includes ``_build.md`` for the generated sections. The build adds
what it measured (``license``, ``size_categories``, ``configs``, ``dataset_info``), so the
front matter is always valid for the Hub and for ``datasets``:

::

    from huggingface_hub import DatasetCard
    DatasetCard.load("build/demo/README.md").data.configs[0]["config_name"]   # 'default'
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from pmc_data.recipe import bundled_dir
from pmc_data.report import PLOTS
from pmc_data.schema import stored_features

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
#: Licenses the Hub knows by id; anything else is ``other`` (with the SPDX ids in the body).
HUB_LICENSES = {
    "cc0-1.0",
    "cc-by-2.0",
    "cc-by-2.5",
    "cc-by-3.0",
    "cc-by-4.0",
    "cc-by-sa-3.0",
    "cc-by-sa-4.0",
    "cc-by-nc-2.0",
    "cc-by-nc-3.0",
    "cc-by-nc-4.0",
    "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-3.0",
    "cc-by-nc-sa-4.0",
    "odc-by",
    "odbl",
    "pddl",
    "apache-2.0",
    "mit",
    "bsd-3-clause",
}
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def hub_license(spdx: str) -> str:
    """The Hub's license id for an SPDX id (``CC-BY-4.0`` -> ``cc-by-4.0``).

    >>> hub_license("CC-BY-NC-SA-3.0"), hub_license("LicenseRef-unknown"), hub_license("ODC-BY-1.0")
    ('cc-by-nc-sa-3.0', 'unknown', 'odc-by')
    """
    lowered = spdx.lower()
    if lowered.startswith("licenseref-"):
        return "unknown" if lowered.endswith("unknown") else "other"
    lowered = {"odc-by-1.0": "odc-by", "odbl-1.0": "odbl", "pddl-1.0": "pddl"}.get(lowered, lowered)
    return lowered if lowered in HUB_LICENSES else "other"


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def split_template(text: str) -> tuple[dict, str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    return yaml.safe_load(match.group(1)) or {}, text[match.end() :]


def card_metadata(template_meta: dict, manifest: dict, schema: str) -> dict:
    """Hub front matter: the template's fields plus what the build measured."""
    licenses = sorted({hub_license(spdx) for spdx in manifest["totals"]["licenses"]})
    splits = manifest["splits"]
    meta = {
        "pretty_name": template_meta.get("pretty_name", manifest["name"]),
        "license": (licenses[0] if len(licenses) == 1 else licenses) or "unknown",
        "language": template_meta.get("language", ["en"]),
        "task_categories": template_meta.get("task_categories", ["text-generation"]),
        "size_categories": [size_category(sum(splits.values()))],
        "tags": template_meta.get("tags", []),
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": split, "path": f"data/{split}-*.parquet"} for split in splits
                ],
            }
        ],
        "dataset_info": {
            "features": stored_features()[schema]["card"],
            "splits": [
                {
                    "name": split,
                    "num_bytes": manifest["split_stats"][split]["bytes"],
                    "num_examples": rows,
                }
                for split, rows in splits.items()
            ],
        },
    }
    extra = {k: v for k, v in template_meta.items() if k not in meta}
    return meta | extra


def render_card(recipe, manifest: dict, templates: Path | None = None) -> str:
    """The card's full text for a finished build."""
    folder = templates or bundled_dir("datacards")
    name = recipe.model.card
    path = folder / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no dataset card template {path.name} in {folder}")
    template_meta, body = split_template(path.read_text(encoding="utf-8"))
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    text = env.from_string(body).render(
        m=manifest,
        recipe=recipe.resolved(),
        plots=PLOTS,
        template=template_meta,
    )
    meta = card_metadata(template_meta, manifest, recipe.schema)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n{text}"


def write_card(recipe, manifest: dict, output: Path) -> Path:
    path = output / "README.md"
    path.write_text(render_card(recipe, manifest), encoding="utf-8")
    return path
