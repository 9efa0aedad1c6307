"""Writes the Kubernetes manifests to apply into a directory: every manifest of deploy/kubernetes/,
with deployment.yaml's content items filled in, and content.yaml, the ConfigMap of the clinical
content (every file of cards/). A ConfigMap has no folders, so templates/x.md is the key
templates__x.md, mounted back at its path. `make kubernetes` runs it (into build/kubernetes/):

    python deploy/kubernetes/content.py build/kubernetes

Neither the ConfigMap nor the items are committed: they are made from cards/ at each deploy.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
CARDS = HERE.parent.parent / "cards"
ITEMS = re.compile(r"(?<=# BEGIN content items\n).*?(?=^ *# END content items)", re.S | re.M)


class _Literal(yaml.SafeDumper):
    """Multi-line text as literal blocks, so that the ConfigMap reads like the files."""


_Literal.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def files() -> dict[str, Path]:
    return {p.relative_to(CARDS).as_posix().replace("/", "__"): p for p in sorted(CARDS.rglob("*")) if p.is_file()}


def content_configmap() -> str:
    data = {key: path.read_text(encoding="utf-8") for key, path in files().items()}
    document = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cds-service-content"}, "data": data}
    header = "# Generated from cards/ by deploy/kubernetes/content.py (`make kubernetes`): edit cards/, not this.\n"
    return header + yaml.dump(document, Dumper=_Literal, sort_keys=False, allow_unicode=True, width=1000)


def deployment() -> str:
    text = (HERE / "deployment.yaml").read_text(encoding="utf-8")
    indent = " " * 14
    items = "".join(f"{indent}- {{key: {key}, path: {key.replace('__', '/')}}}\n" for key in files())
    filled, found = ITEMS.subn(items, text, count=1)
    if not found:
        raise SystemExit("deploy/kubernetes/deployment.yaml has no '# BEGIN content items' ... '# END content items'")
    return filled


def write(out: Path) -> None:
    """The manifests to apply, into out: the committed ones, deployment.yaml filled in, content.yaml."""
    out.mkdir(parents=True, exist_ok=True)
    for manifest in sorted(HERE.glob("*.yaml")):
        (out / manifest.name).write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")
    (out / "deployment.yaml").write_text(deployment(), encoding="utf-8")
    (out / "content.yaml").write_text(content_configmap(), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} OUTPUT_DIRECTORY")
    write(Path(sys.argv[1]))
