"""File patterns with named fields: how ``segforge import-dataset`` finds a dataset's files as shipped.

Datasets arrive in their source's layout (BraTS: one folder per case, DRIVE: ``training/images/
21_training.tif`` beside ``training/1st_manual/21_manual1.gif``, pyradiomics: ``brain1_image.nrrd``).
Rather than a converter per layout, the user describes each kind of file by a pattern relative
to the source folder:

- ``{name}`` is a *field*: one or more characters inside one path component, matched
  shortest-first; ``{name:REGEX}`` restricts it (``{case:\\d+}``). The field ``case`` is the case
  id. A field used twice in one pattern must have the same value both times
  (``{split}/images/{case}_{split}.tif``), and fields shared by several patterns must agree for
  the files of one case, so a case's channels cannot come from two different folders by accident.
- ``*`` matches any characters inside one path component, ``?`` one character; everything else
  is literal. ``**`` (any depth) is refused: a pattern that can match at any depth hides mistakes.

The patterns become a list of :class:`~segforge.io.dataset_import.CaseFiles`; everything that
would be ambiguous (two files for one channel of a case, a case missing a channel, a label without
an image) is a one-line error before anything is written.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segforge.errors import UsageError

CASE_FIELD = "case"
_TOKEN_RE = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<regex>[^{}]+))?\}|\*\*|\*|\?|\{|\}")
PATTERN_HINT = (
    "patterns are relative to the source folder, e.g. '{split}/{case}/Flair.nii.gz' ({name}: a field, *: any)"
)


@dataclass(frozen=True)
class FilePattern:
    """One parsed pattern: the regex that checks a relative path and the glob that lists candidates."""

    text: str
    what: str
    regex: re.Pattern[str]
    glob: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, what: str) -> FilePattern:
        """Parse ``text`` (``what`` names it in errors: ``channel FLAIR``, ``labels``, ``mask``)."""
        posix = PurePosixPath(text.replace("\\", "/"))
        if not text or posix.is_absolute() or ".." in posix.parts:
            raise UsageError(f"{what} pattern '{text}' must be a path relative to the source folder", hint=PATTERN_HINT)
        regex, globbed, fields, pos = [], [], [], 0
        for m in _TOKEN_RE.finditer(text):
            literal = text[pos : m.start()]
            regex.append(re.escape(literal))
            globbed.append(glob.escape(literal))
            token, pos = m.group(0), m.end()
            if token == "**":
                raise UsageError(
                    f"{what} pattern '{text}': '**' is not supported", hint="write one '*' per folder level"
                )
            if token in ("{", "}"):
                raise UsageError(f"{what} pattern '{text}': unmatched '{token}'", hint="write fields as {name}")
            if token in ("*", "?"):
                regex.append("[^/]*" if token == "*" else "[^/]")
                globbed.append(token)
                continue
            name, sub = m.group("name"), m.group("regex")
            if name in fields:
                regex.append(f"(?P={name})")
            else:
                fields.append(name)
                regex.append(f"(?P<{name}>{sub or '[^/]+?'})")
            globbed.append("*")
        regex.append(re.escape(text[pos:]))
        globbed.append(glob.escape(text[pos:]))
        try:
            compiled = re.compile("".join(regex))
        except re.error as exc:
            raise UsageError(f"{what} pattern '{text}': invalid field regex ({exc})", hint=PATTERN_HINT) from None
        return cls(text, what, compiled, "".join(globbed), tuple(fields))

    def match(self, relative: str) -> dict[str, str] | None:
        """The fields of ``relative`` (a POSIX path below the source folder), or None if it does not match."""
        m = self.regex.fullmatch(relative)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}

    def files(self, root: Path) -> list[tuple[Path, dict[str, str]]]:
        """Every file under ``root`` this pattern matches, sorted, with its fields; hidden files are skipped."""
        found = []
        for path in sorted(root.glob(self.glob)):
            relative = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in PurePosixPath(relative).parts) or not path.is_file():
                continue
            fields = self.match(relative)
            if fields is not None:
                found.append((path, fields))
        return found


@dataclass
class _Found:
    """The files of one case while patterns are being matched."""

    fields: dict[str, str]
    origin: dict[str, Path]  # field -> the file it was first read from
    files: dict[str, Path]  # role ("channel FLAIR", "labels", "mask") -> file


def parse_test_rule(rule: str | None) -> tuple[str, tuple[str, ...]] | None:
    """``"split=test"`` or ``"split=test,validation"`` -> ``("split", ("test", "validation"))``."""
    if rule is None:
        return None
    field, sep, values = rule.partition("=")
    items = tuple(v.strip() for v in values.split(",") if v.strip())
    if not sep or not field.strip() or not items:
        raise UsageError(f"--test '{rule}' is not FIELD=VALUE", hint="e.g. --test split=test (a field of the patterns)")
    return field.strip(), items


def _add(cases: dict[str, _Found], pattern: FilePattern, path: Path, fields: dict[str, str], case_id: str) -> None:
    found = cases.setdefault(case_id, _Found({}, {}, {}))
    if pattern.what in found.files:
        raise UsageError(
            f"two files for {pattern.what} of case '{case_id}': {found.files[pattern.what]} and {path}",
            hint=f"make the pattern '{pattern.text}' more specific (fix a folder or add a field such as {{split}})",
        )
    for name, value in fields.items():
        if name in found.fields and found.fields[name] != value:
            raise UsageError(
                f"case '{case_id}': field {{{name}}} is '{found.fields[name]}' in {found.origin[name]} "
                f"but '{value}' in {path}",
                hint="each case's files must agree on every shared field; make the patterns more specific",
            )
        found.fields.setdefault(name, value)
        found.origin.setdefault(name, path)
    found.files[pattern.what] = path


def match_cases(
    root: Path,
    channels: Mapping[str, str],
    labels: str | None = None,
    mask: str | None = None,
    test: str | None = None,
    case_id: str | None = None,
) -> list[tuple[str, dict[str, Path], Path | None, Path | None, bool]]:
    """Match every pattern under ``root``: ``(case id, {channel: file}, label, mask, is_test)`` per case.

    Without a ``{case}`` field in any pattern, all files form the single case ``case_id``.
    """
    if not root.is_dir():
        raise UsageError(f"source folder {root} does not exist", hint="pass the folder the dataset was unpacked into")
    if not channels:
        raise UsageError("no channels given", hint="pass --channel NAME=PATTERN once per image channel")
    patterns = [FilePattern.parse(text, f"channel {name}") for name, text in channels.items()]
    labels_pattern = FilePattern.parse(labels, "labels") if labels else None
    mask_pattern = FilePattern.parse(mask, "mask") if mask else None
    every = [p for p in (*patterns, labels_pattern, mask_pattern) if p is not None]
    with_case = [p for p in every if CASE_FIELD in p.fields]
    if with_case and len(with_case) != len(every):
        lacking = next(p for p in every if CASE_FIELD not in p.fields)
        raise UsageError(
            f"{lacking.what} pattern '{lacking.text}' has no {{case}} field but the others do",
            hint="put {case} where the case id is in every pattern",
        )
    if not with_case and case_id is None:
        raise UsageError("no pattern has a {case} field", hint="put {case} in the patterns, or pass --case-id NAME")
    cases: dict[str, _Found] = {}
    for pattern in every:
        matches = pattern.files(root)
        if not matches:
            raise UsageError(f"{pattern.what} pattern '{pattern.text}' matches no file under {root}", hint=PATTERN_HINT)
        for path, fields in matches:
            _add(cases, pattern, path, fields, fields.get(CASE_FIELD, case_id or ""))
    rule = parse_test_rule(test)
    if rule is not None:
        field, values = rule
        if all(field not in p.fields for p in patterns):
            raise UsageError(f"--test field '{field}' is in no channel pattern", hint="use a {field} of the patterns")
        seen = sorted({c.fields.get(field, "") for c in cases.values()})
        if not set(values) & set(seen):
            raise UsageError(
                f"no case has {field}={','.join(values)} (values found: {', '.join(seen)})",
                hint=f"pick --test {field}=VALUE among the values found",
            )
    out = []
    for cid, found in sorted(cases.items()):
        for pattern in patterns:
            if pattern.what not in found.files:
                any_file = next(iter(found.files.values()))
                raise UsageError(
                    f"case '{cid}' has no file for {pattern.what} (pattern '{pattern.text}'; the case has {any_file})",
                    hint="add the missing file, or remove the case's other files from the source folder",
                )
        is_test = rule is not None and found.fields.get(rule[0]) in rule[1]
        label = found.files.get("labels")
        if labels_pattern is not None and label is None and not is_test:
            raise UsageError(
                f"training case '{cid}' has no labels file (pattern '{labels_pattern.text}')",
                hint="add the label, or mark the case as a test case with --test FIELD=VALUE",
            )
        if mask_pattern is not None and "mask" not in found.files:
            raise UsageError(f"case '{cid}' has no mask file (pattern '{mask_pattern.text}')", hint="add the mask")
        images = {name: found.files[p.what] for name, p in zip(channels, patterns, strict=True)}
        out.append((cid, images, label, found.files.get("mask"), is_test))
    return out


def parse_assignments(items: Sequence[str], what: str) -> dict[str, str]:
    """``["FLAIR={case}/f.nii.gz", ...]`` -> ``{"FLAIR": "{case}/f.nii.gz"}`` (split at the first '=')."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{what} '{item}' is not NAME=VALUE", hint=f"e.g. {what} FLAIR='{{case}}/flair.nii.gz'")
        if name.strip() in out:
            raise UsageError(f"{what} '{name.strip()}' is given twice", hint="give each name once")
        out[name.strip()] = value.strip()
    return out
