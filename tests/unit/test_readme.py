"""The README is the front door: its runbook catalogue is `runbooks list` (name, destructive, schedule), and every
page it links to exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from runbooks.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _catalogue_rows() -> dict[str, tuple[bool, str | None]]:
    section = re.search(r"<!-- section: runbooks -->(.*?)<!-- /section: runbooks -->", README, flags=re.S)
    assert section, "README.md has no runbooks section"
    rows = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            schedule = cells[3].strip("`")
            rows[cells[0].strip("`")] = (cells[2] == "yes", None if schedule == "-" else schedule)
    return rows


def test_the_readme_catalogue_is_runbooks_list() -> None:
    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {s["name"]: (bool(s["destructive"]), s["schedule"]) for s in json.loads(result.stdout)}
    assert _catalogue_rows() == listed


def test_every_page_the_readme_links_to_exists() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []
