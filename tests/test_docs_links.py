"""The README and RESULTS.md link only to files the repository has: a picture or page renamed
or left uncommitted would show as a broken image to every reader."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", ["README.md", "RESULTS.md"])
def test_every_relative_link_of_the_document_names_a_committed_file(doc):
    targets = [t.split("#")[0] for t in LINK.findall((ROOT / doc).read_text())]
    local = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    assert local, f"{doc} links to no file: the pattern no longer finds its links"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"{doc} links to files that do not exist: {missing}"
