"""Bad inputs of ``segforge import-dataset``: a pattern matching nothing, a missing channel, an unmapped label.

Each kind lays out two cases as a source might ship them (``shipped/case_00N/t1.nii.gz``,
``t2.nii.gz``, ``seg.nii.gz``, copied from the workspace's valid task), breaks one thing, and runs
the import into the workspace's raw folder: one-line error naming the file or pattern, nothing written.
Listed in :data:`corpus_kinds.CORPUS` and in docs/reliability.md like every other kind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from corpus import BadInput, Workspace, image, label


def shipped(break_layout: Callable[[Workspace], None] = lambda ws: None) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        for case in (1, 2):
            folder = ws.root / "shipped" / f"case_00{case}"
            folder.mkdir(parents=True)
            shutil.copyfile(image(ws, case), folder / "t1.nii.gz")
            shutil.copyfile(image(ws, case), folder / "t2.nii.gz")
            shutil.copyfile(label(ws, case), folder / "seg.nii.gz")
        break_layout(ws)

    return setup


IMPORT = ("import-dataset", "{root}/shipped", "--name", "Task097_Shipped", "--labels", "{{case}}/seg.nii.gz",
          "--label-name", "one=1", "--label-name", "two=2", "-np", "1")  # fmt: skip
T1, T2 = ("--channel", "T1={{case}}/t1.nii.gz"), ("--channel", "T2={{case}}/t2.nii.gz")

IMPORTS = [
    BadInput(
        "imp-pattern-matches-nothing",
        "import",
        "channel pattern naming a file no case has",
        shipped(),
        (*IMPORT, "--channel", "T1={{case}}/T1w.nii.gz"),
        "channel T1 pattern '{case}/T1w.nii.gz' matches no file",
    ),
    BadInput(
        "imp-case-missing-channel",
        "import",
        "one case without its second channel",
        shipped(lambda ws: (ws.root / "shipped" / "case_002" / "t2.nii.gz").unlink()),
        (*IMPORT, *T1, *T2),
        "case 'case_002' has no file for channel T2",
    ),
    BadInput(
        "imp-label-outside-map",
        "import",
        "label value 2 missing from --label-map",
        shipped(),
        (*IMPORT, *T1, "--label-map", "0=0,1=1"),
        "label value(s) 2 are not in the label map",
    ),
]
