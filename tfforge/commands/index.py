"""`invoke index`: (re)write wheels/simple/ and list what it holds (or --json)."""

from __future__ import annotations

from tfforge import console, paths
from tfforge.options.typed.index import IndexOptions
from tfforge.publish import index


def index_command(opts: IndexOptions) -> index.IndexResult:
    folder = paths.wheels_dir()
    result = index.build_index(folder)
    for s in result["skipped"]:
        console.warn(f"not indexed: {s['filename']}: {s['reason']}")
    if opts.json:
        console.print_json(result)
        return result
    if not result["wheels"]:
        console.warn(f"no wheels in {folder}; the index is empty")
    for w in result["wheels"]:
        console.say(f"{w['project']:<24} {w['version']:<28} {w['filename']}")
    console.say(
        f"index: {result['index']}/ ({len(result['projects'])} project(s), "
        f"{len(result['wheels'])} wheel(s))"
    )
    console.say(f"use:   pip install --index-url {result['url']} <project>==<version>")
    return result
