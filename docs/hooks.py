"""MkDocs hook: the options table in the docs is generated from ``emogram.options``, where each
option is declared once, so the docs cannot drift from the code.

A page puts ``<!-- options-table -->`` on a line of its own where the table belongs. Without
``emogram.options.markdown_table`` the build fails, loudly: a silent skip would publish a page
without its table."""

from __future__ import annotations

MARKER = "<!-- options-table -->"


def options_table() -> str:
    try:
        from emogram.options import markdown_table
    except ImportError as exc:
        raise RuntimeError(f"docs/hooks.py: the options table needs emogram.options.markdown_table "
                           f"({exc})") from exc
    return markdown_table()


_placed: list[str] = []


def on_pre_build(config) -> None:
    _placed.clear()


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    _placed.append(page.file.src_uri)
    return markdown.replace(MARKER, options_table())


def on_post_build(config) -> None:
    if not _placed:  # the marker was lost in an edit: the table would vanish without a word
        raise RuntimeError(f"docs/hooks.py: no page holds {MARKER}; the guide's options table is gone")
