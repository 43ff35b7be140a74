"""docs/cli.md is generated from the Typer app and must match what the code generates now."""

from __future__ import annotations

from pathlib import Path

import typer

from segforge.cli.app import build_app
from segforge.cli.cli_reference import DOCS_PATH, render_cli_reference

REPO = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_up_to_date():
    committed = (REPO / DOCS_PATH).read_text(encoding="utf-8")
    assert committed == render_cli_reference(), (
        "docs/cli.md is stale: regenerate it with `python scripts/gen_cli_docs.py` and commit it"
    )


def test_every_command_and_option_is_documented():
    text = render_cli_reference()
    root = typer.main.get_command(build_app())
    for name, command in root.commands.items():
        assert f"segforge {name}" in text
        for sub in getattr(command, "commands", {}):
            assert f"### segforge {name} {sub}" in text or f"#### segforge {name} {sub}" in text
        for param in command.params:
            if param.param_type_name == "option":
                assert f"`{param.opts[0]}`" in text, (name, param.opts)
    assert "| `--plots` | off |" in text and "| `--minutes` | `5.0` |" in text


def test_text_from_help_is_escaped_for_markdown():
    from segforge.cli.cli_reference import markdown_escape

    assert markdown_escape("<results>/a__b__c | x*y & z") == "&lt;results&gt;/a\\_\\_b\\_\\_c \\| x\\*y &amp; z"
