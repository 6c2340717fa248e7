"""docs/llmops-evaluation.md's Python snippets run, in order, in a fresh working directory."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "llmops-evaluation.md"


def test_the_evaluation_docs_snippets_run() -> None:
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) >= 4
    for snippet in snippets:
        exec(compile(snippet, str(DOC), "exec"), {"__name__": "docs"})
