"""The label taxonomy DetectLabels speaks: label names, ancestors, aliases and categories.

The data is `labels.toml` beside this file (Opsis's own table; see its header). It is read once
and checked: every parent and detector label exists, the parent graph has no cycle, every label
has a category, and no name is both a label and another label's alias.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Label:
    """One label of the taxonomy; `ancestors` holds every ancestor, in alphabetical order as
    Rekognition lists a label's Parents."""

    name: str
    parents: tuple[str, ...]
    ancestors: tuple[str, ...]
    aliases: tuple[str, ...]
    categories: tuple[str, ...]
    wordnet: str | None


@dataclass(frozen=True)
class Taxonomy:
    version: str
    labels: Mapping[str, Label]
    # detector name -> the detector's class name -> label name
    detectors: Mapping[str, Mapping[str, str]]

    def label_for(self, detector: str, class_name: str) -> Label:
        """The label a detector's class is reported as."""
        try:
            return self.labels[self.detectors[detector][class_name]]
        except KeyError:
            raise ValueError(f"the taxonomy has no label for {detector!r} class {class_name!r}") from None

    def with_ancestors(self, name: str) -> tuple[str, ...]:
        """The label itself, then its ancestors."""
        return (name, *self.labels[name].ancestors)


@cache
def taxonomy() -> Taxonomy:
    """The shipped taxonomy, parsed and checked once per process."""
    document = tomllib.loads((files(__name__) / "labels.toml").read_text(encoding="utf-8"))
    return build_taxonomy(document)


def build_taxonomy(document: Mapping[str, Any]) -> Taxonomy:
    """A checked Taxonomy from a parsed `labels.toml`; ValueError names the first problem found."""
    raw: Mapping[str, Mapping[str, Any]] = document["labels"]
    for name, entry in raw.items():
        for parent in entry.get("parents", []):
            if parent not in raw:
                raise ValueError(f"label {name!r} has unknown parent {parent!r}")
        if not entry.get("categories"):
            raise ValueError(f"label {name!r} has no category")
        if clash := set(entry.get("aliases", [])) & set(raw):
            raise ValueError(f"label {name!r} has aliases that are labels: {sorted(clash)}")
    labels = {name: _label(name, raw) for name in raw}
    detectors = {detector: dict(classes) for detector, classes in document.get("detectors", {}).items()}
    for detector, classes in detectors.items():
        if missing := sorted(set(classes.values()) - set(labels)):
            raise ValueError(f"detector {detector!r} maps classes to unknown labels {missing}")
    return Taxonomy(version=str(document["version"]), labels=labels, detectors=detectors)


def _label(name: str, raw: Mapping[str, Mapping[str, Any]]) -> Label:
    entry = raw[name]
    return Label(
        name=name,
        parents=tuple(entry.get("parents", [])),
        ancestors=tuple(sorted(_ancestors(name, raw))),
        aliases=tuple(entry.get("aliases", [])),
        categories=tuple(entry["categories"]),
        wordnet=entry.get("wordnet"),
    )


def _ancestors(name: str, raw: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Every ancestor of a label (depth-first, refusing cycles)."""
    found: set[str] = set()
    path: list[str] = [name]

    def visit(label: str) -> None:
        for parent in raw[label].get("parents", []):
            if parent in path:
                raise ValueError(f"label parents form a cycle: {' -> '.join([*path, parent])}")
            found.add(parent)
            path.append(parent)
            visit(parent)
            path.pop()

    visit(name)
    return found
