"""Regenerate the key table of docs/namelist.md from colmda.config.KEYS (run after adding or changing a key)."""

from pathlib import Path

from colmda import config

doc = Path(__file__).resolve().parents[1] / "docs" / "namelist.md"
doc.write_text(config.replace_generated_section(doc.read_text(), config.reference_markdown()))
print(f"updated {doc}")
