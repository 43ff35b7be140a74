"""Meta-test: every hookspec is documented and tested (as datasette and llm check theirs).

For each hookspec in :mod:`segforge.hookspecs`:

* it has a docstring;
* ``docs/plugins/hooks.md`` shows it as ``def <name><signature>:`` exactly as
  ``inspect.signature`` prints it (the hookspecs module uses postponed annotations, so the
  quotes around annotations are dropped), followed by its docstring;
* some test file under ``tests/`` other than this one mentions the hook by name.

Adding a hook without its documentation or without a test fails here, naming the hook.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from segforge import hookspecs

TESTS = Path(__file__).resolve().parent
HOOKS_DOC = TESTS.parent / "docs" / "plugins" / "hooks.md"
SPEC_MARKER = f"{hookspecs.PROJECT_NAME}_spec"


def hookspec_names() -> list[str]:
    """Names of the functions in segforge.hookspecs that carry pluggy's hookspec marker."""
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, SPEC_MARKER))


def documented_signature(name: str) -> str:
    """``def name(args) -> ret:`` as hooks.md must show it."""
    signature = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
    return f"def {name}{signature}:"


def _squash(text: str) -> str:
    return " ".join(text.split())


def files_mentioning(name: str) -> list[Path]:
    """Test files (other than this one) whose text contains ``name``."""
    me = Path(__file__).resolve()
    return [p for p in sorted(TESTS.rglob("*.py")) if p.resolve() != me and name in p.read_text(encoding="utf-8")]


HOOKS = hookspec_names()


def test_hookspecs_are_found():
    assert "segforge_register_networks" in HOOKS and "segforge_report_header" in HOOKS
    assert all(name.startswith("segforge_") for name in HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring(name: str):
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc and doc.strip(), f"hook {name} has no docstring in src/segforge/hookspecs.py"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_exact_signature_and_docstring(name: str):
    text = HOOKS_DOC.read_text(encoding="utf-8")
    signature = documented_signature(name)
    assert signature in text, f"hook {name}: {HOOKS_DOC.name} does not show its signature `{signature}`"
    after = _squash(text.split(signature, 1)[1])
    doc = _squash(inspect.getdoc(getattr(hookspecs, name)) or "")
    assert doc in after[: len(doc) + 200], (
        f"hook {name}: {HOOKS_DOC.name} does not repeat its docstring right after the signature: {doc!r}"
    )


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_exercised_by_a_test(name: str):
    assert files_mentioning(name), (
        f"hook {name} is not exercised by any test: no file under tests/ (besides {Path(__file__).name}) mentions it"
    )


def test_hooks_doc_documents_no_hook_that_does_not_exist():
    text = HOOKS_DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^def (segforge_\w+)\(", text, flags=re.MULTILINE))
    assert documented == set(HOOKS), (
        f"{HOOKS_DOC.name} documents {sorted(documented - set(HOOKS))} that hookspecs.py does not declare"
        if documented - set(HOOKS)
        else f"{HOOKS_DOC.name} lacks {sorted(set(HOOKS) - documented)}"
    )


def test_checks_catch_an_undocumented_untested_hook():
    """The checks above fail for a hook nobody documented or tested (a made-up name here)."""
    name = "segforge_" + "made_up_hook_for_the_meta_test"
    assert name not in HOOKS_DOC.read_text(encoding="utf-8")
    assert files_mentioning(name) == []
