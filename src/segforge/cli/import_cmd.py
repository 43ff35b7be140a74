"""``segforge import-dataset``: files laid out as their source ships them -> a raw TaskNNN_Name folder.

The patterns (see :mod:`segforge.io.import_patterns`) build the case list; the Python API
:func:`segforge.io.dataset_import.import_dataset` does the rest, so a layout no pattern covers can
call it directly with its own list of cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def _int_list(text: str, what: str) -> list[int]:
    from segforge.errors import UsageError

    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items or not all(p.isdigit() for p in items):
        raise UsageError(f"{what} '{text}' is not a comma-separated list of label values", hint=f"e.g. {what} 1,2,3")
    return [int(p) for p in items]


def import_dataset_command(
    src: Annotated[Path, typer.Argument(help="The folder the dataset was unpacked into; patterns are relative to it.")],
    name: Annotated[str, typer.Option("--name", help="Output folder TaskNNN_Name in the raw folder (SEGFORGE_RAW).")],
    channel: Annotated[
        list[str],
        typer.Option(
            "--channel",
            help="NAME=PATTERN, one per image file, in channel order ({case} = case id); R,G,B=PATTERN: an RGB file.",
        ),
    ],
    labels: Annotated[
        Optional[str], typer.Option("--labels", help="PATTERN of the label files (e.g. '{case}/seg.nii.gz').")
    ] = None,
    label_name: Annotated[
        Optional[list[str]], typer.Option("--label-name", help="NAME=VALUE of a label after mapping; repeatable.")
    ] = None,
    region: Annotated[
        Optional[list[str]],
        typer.Option("--region", help="NAME=V1,V2,... a region of label values (nnU-Net v2 regions); repeatable."),
    ] = None,
    regions_class_order: Annotated[
        Optional[str],
        typer.Option("--regions-class-order", help="Label written per region, e.g. 2,1,4 (default: derived)."),
    ] = None,
    label_map: Annotated[
        Optional[list[str]],
        typer.Option("--label-map", help="SOURCE=TARGET label values, e.g. 0=0,255=1 ('*=0': all others); converts."),
    ] = None,
    mask: Annotated[
        Optional[str],
        typer.Option("--mask", help="PATTERN of a mask per case: channels are set to 0 outside it (converts)."),
    ] = None,
    test: Annotated[
        Optional[str], typer.Option("--test", help="FIELD=VALUE[,VALUE]: cases with this field value go to imagesTs.")
    ] = None,
    case_id: Annotated[
        Optional[str], typer.Option("--case-id", help="Case id when the patterns have no {case} (a single case).")
    ] = None,
    file_ending: Annotated[
        Optional[str], typer.Option("--file-ending", help="Ending of the dataset (default: the first channel's).")
    ] = None,
    link: Annotated[
        bool, typer.Option("--link/--copy", help="Symlink unconverted files (absolute) or copy them (default).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing, different output.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip checking the result with `verify`.")] = False,
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases written in parallel.")] = 2,
) -> None:
    """Import a dataset as shipped (case folders, single files, any naming) into the raw folder as TaskNNN_Name.

    Each channel and the labels are found by a pattern with named fields; the result is verified
    before it appears under its name. Re-running resumes or, when complete, does nothing.
    """
    from segforge.errors import UsageError
    from segforge.io.dataset_import import CaseFiles, import_dataset
    from segforge.io.import_patterns import match_cases, parse_assignments

    if num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {num_processes}", hint="pass -np 1 to import in one process")
    names = {k: int(v) for k, v in _label_values(label_name or []).items()}
    regions = {k: _int_list(v, "--region") for k, v in parse_assignments(region or [], "--region").items()}
    order = _int_list(regions_class_order, "--regions-class-order") if regions_class_order else None
    src = src.expanduser().resolve()
    matched = match_cases(src, parse_assignments(channel, "--channel"), labels, mask, test, case_id)
    cases = [CaseFiles(cid, images, label, case_mask, is_test) for cid, images, label, case_mask, is_test in matched]
    summary = import_dataset(
        cases,
        name,
        labels=names,
        regions=regions or None,
        regions_class_order=order,
        label_map=label_map,
        mode="link" if link else "copy",
        file_ending=file_ending,
        overwrite=overwrite,
        verify=not no_verify,
        num_processes=num_processes,
        show_progress=True,
        description=f"imported by segforge import-dataset from {src.name}",
    )
    typer.echo(summary.line())


def _label_values(items: list[str]) -> dict[str, str]:
    from segforge.errors import UsageError
    from segforge.io.import_patterns import parse_assignments

    values = parse_assignments(items, "--label-name")
    for key, value in values.items():
        if not value.isdigit():
            raise UsageError(f"--label-name {key}={value}: the value is not a whole number", hint="e.g. vessel=1")
    return values


def register(app: typer.Typer) -> None:
    app.command("import-dataset")(import_dataset_command)
