"""Read mapping files: TOML → typed spec → compiled mapper, reporting every problem with file and line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from syncd.errors import MappingError, Problem
from syncd.mapping.compiled import CompiledMapping
from syncd.mapping.compiler import Issue, ObjectCompiler, compile_objects
from syncd.mapping.spec import (
    MAPPING_NAME_PATTERN,
    FieldSpec,
    KeyPath,
    MappingHeader,
    MappingName,
    MappingSpec,
    ObjectSpec,
    dotted,
)
from syncd.mapping.transforms import TRANSFORMS, TransformRegistry
from syncd.systems import registrations
from syncd.tomllocator import locate_keys

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_NAME = TypeAdapter(MappingName)


def _pydantic_issues(exc: ValidationError, prefix: KeyPath, model: type[BaseModel]) -> list[Issue]:
    issues: list[Issue] = []
    for error in exc.errors():
        loc: KeyPath = (*prefix, *(p for p in error["loc"] if isinstance(p, str | int)))
        kind = error["type"]
        if kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if "input" in error and kind not in ("model_type", "dict_type"):
                message += f" (got {error['input']!r})"
        issues.append(Issue(loc, message))
    return issues


def _validate(model: type[BaseModel], data: Any, prefix: KeyPath, issues: list[Issue]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, prefix, model))
        return None


def _validate_lenient(
    model: type[BaseModel], data: Mapping[str, Any], prefix: KeyPath, issues: list[Issue]
) -> tuple[Any, set[str]]:
    """Validate; on failure report the errors, then retry without the offending keys so later checks still run."""
    found: list[Issue] = []
    result = _validate(model, data, prefix, found)
    if result is not None:
        return result, set()
    issues.extend(found)
    bad = {str(i.path[len(prefix)]) for i in found if len(i.path) > len(prefix)}
    retry = _validate(model, {k: v for k, v in data.items() if k not in bad}, prefix, [])
    return retry, bad


def _type_objects(
    objects: Mapping[str, Any], header: MappingHeader | None, issues: list[Issue], registry: TransformRegistry
) -> None:
    """Type and compile each object on its own, so one broken key hides none of the other mistakes."""
    # When the header is unreadable the objects are still checked, as between the first registered systems.
    default_header = MappingHeader(crm=registrations("crm")[0].name, accounting=registrations("accounting")[0].name)
    for name, raw in objects.items():
        base: KeyPath = ("objects", name)
        if not isinstance(raw, Mapping):
            issues.append(Issue(base, "each object must be a table"))
            continue
        raw_fields = raw.get("fields", {})
        if not isinstance(raw_fields, Mapping):
            issues.append(Issue((*base, "fields"), "fields must be a table of field tables"))
            raw_fields = {}
        good: dict[str, FieldSpec] = {}
        broken: set[str] = set()
        # Paths whose direction was unreadable: checks that depend on it would only add noise there.
        guessed: list[KeyPath] = []
        for fname, fraw in raw_fields.items():
            path: KeyPath = (*base, "fields", fname)
            if not isinstance(fraw, Mapping):
                issues.append(Issue(path, "each field must be a table"))
                broken.add(fname)
                continue
            fspec, bad = _validate_lenient(FieldSpec, fraw, path, issues)
            if fspec is None or {"crm", "acc", "link"} & bad:
                broken.add(fname)
            else:
                good[fname] = fspec
            if "direction" in bad:
                guessed.append(path)
        shell, bad = _validate_lenient(ObjectSpec, {**raw, "fields": {}}, base, issues)
        if shell is None:
            continue
        if "direction" in bad:
            guessed.append(base)
        compiler = ObjectCompiler(header or default_header, set(objects), registry)
        compiler.compile(name, shell.model_copy(update={"fields": good}), broken)
        for issue in compiler.issues:
            if not any(issue.path[: len(g)] == g and "direction" in issue.message for g in guessed):
                issues.append(issue)


def _name_issues(data: Mapping[str, Any], file: str) -> list[Issue]:
    """What is wrong with the file's top-level `name`, said so that the fix is obvious."""
    if "name" not in data:
        stem = Path(file).stem
        # Before names existed a mapping's links were kept under its file's stem: suggest it, so they stay.
        example = stem if re.match(MAPPING_NAME_PATTERN, stem) else "crm-accounting"
        return [
            Issue(
                ("name",),
                f'missing required key \'name\': add name = "{example}" at the top of the file, before [mapping] '
                "(the mapping's stable identity: its links, cursors and conflicts are kept under it)",
            )
        ]
    try:
        _NAME.validate_python(data["name"])
    except ValidationError:
        return [
            Issue(
                ("name",),
                f"name must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit "
                f"(got {data['name']!r})",
            )
        ]
    return []


def check_text(
    text: str, file: str, registry: TransformRegistry = TRANSFORMS
) -> tuple[CompiledMapping | None, list[Problem]]:
    """Parse, type and compile one mapping file's text; every problem found is returned with its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.search(str(exc))
        message = _TOML_POSITION.sub("", str(exc)).strip()
        return None, [Problem(file, "", f"TOML syntax: {message}", int(match.group(1)) if match else None)]
    lines = locate_keys(text)
    issues: list[Issue] = []
    spec = _validate(MappingSpec, data, (), [])
    compiled: CompiledMapping | None = None
    if spec is not None:
        spec.with_source(file, lines)
        compiled, issues = compile_objects(spec, registry)
    else:
        # Typing the whole file failed: redo it piece by piece to find every problem, not just the first layer.
        for key in sorted(set(data) - {"name", "mapping", "objects"}):
            issues.append(
                Issue((key,), f"unknown key {key!r} (a mapping file has name, [mapping] and [objects.*])")
            )
        issues.extend(_name_issues(data, file))
        header = None
        if "mapping" not in data:
            issues.append(Issue(("mapping",), "missing [mapping] table (crm = ..., accounting = ...)"))
        else:
            header = _validate(MappingHeader, data["mapping"], ("mapping",), issues)
        objects = data.get("objects")
        if not isinstance(objects, Mapping):
            issues.append(Issue(("objects",), "missing [objects.<name>] tables"))
        else:
            _type_objects(objects, header, issues, registry)
    # A missing name has no line of its own: point at the first table, which it has to come before.
    first_table = min(lines.values(), default=1)
    problems = [
        Problem(file, dotted(i.path), i.message, _line(lines, i.path) or (first_table if i.path == ("name",) else None))
        for i in issues
    ]
    problems.sort(key=lambda p: (p.line or 0, p.key_path))
    return (compiled if not problems else None), problems


def _line(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def check_files(
    paths: Iterable[str | Path], registry: TransformRegistry = TRANSFORMS
) -> tuple[list[CompiledMapping], list[Problem]]:
    """Check several mapping files; returns the ones that compiled and every problem in all of them."""
    compiled: list[CompiledMapping] = []
    problems: list[Problem] = []
    named: dict[str, CompiledMapping] = {}
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), "", f"cannot read mapping file: {exc}"))
            continue
        mapping, found = check_text(text, str(path), registry)
        problems.extend(found)
        if mapping is None:
            continue
        first = named.setdefault(mapping.name, mapping)
        if first is not mapping:
            # Two files under one name would read and write the same links and cursors as if one.
            problems.append(
                Problem(
                    mapping.source_file,
                    "name",
                    f"name {mapping.name!r} is already the name of {first.source_file}: each active mapping "
                    "needs its own name",
                    mapping.spec.line_of(("name",)),
                )
            )
            continue
        compiled.append(mapping)
    return compiled, problems


def load_mappings(paths: Iterable[str | Path], registry: TransformRegistry = TRANSFORMS) -> list[CompiledMapping]:
    """Load and compile mapping files once at start-up; raises MappingError listing every problem in all files."""
    compiled, problems = check_files(paths, registry)
    if problems:
        raise MappingError(problems)
    return compiled


def load_mapping(path: str | Path, registry: TransformRegistry = TRANSFORMS) -> CompiledMapping:
    """Load and compile one mapping file; raises MappingError listing every problem."""
    return load_mappings([path], registry)[0]


#: Mapping files shipped with syncd, one per system pair.
SHIPPED_MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"
