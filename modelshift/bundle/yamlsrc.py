"""Reading ``bundle.yaml`` with line numbers, so every problem can point at its line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings: ``version: 2024-05-13`` is a model version, not a date."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based when the parser knew it."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class YamlDocument:
    """Parsed data plus the node tree, to map a field path back to a line."""

    def __init__(self, text: str) -> None:
        try:
            self.root: yaml.Node | None = yaml.compose(text, Loader=_Loader)
            self.data: Any = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
            raise YamlSyntaxError(what, mark.line + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(str(exc), None) from None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node on ``loc`` that exists (the parent, for a missing key)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        child = value_node
                        line = key_node.start_mark.line + 1
            elif (
                isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
            ):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def duplicate_keys(self) -> list[tuple[str, int, int]]:
        """(dotted path, first line, repeated line) for every key that appears twice in one mapping."""
        found: list[tuple[str, int, int]] = []

        def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
            if isinstance(node, yaml.MappingNode):
                seen: dict[str, int] = {}
                for key_node, value_node in node.value:
                    key = str(key_node.value)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        found.append((".".join((*path, key)), seen[key], line))
                    else:
                        seen[key] = line
                    walk(value_node, (*path, key))
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    walk(item, (*path, str(index)))

        if self.root is not None:
            walk(self.root, ())
        return found
