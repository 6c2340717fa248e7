"""docs/llmops-monitoring.md's Python snippets run, in order, in a fresh working directory."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "llmops-monitoring.md"


def test_the_monitoring_docs_snippets_run() -> None:
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) == 2
    namespace: dict[str, object] = {"__name__": "docs"}
    for snippet in snippets:  # the second uses the first's client and helper
        exec(compile(snippet, str(DOC), "exec"), namespace)
