"""Build kits: every input of one build, captured once and stored by content, so the build can
run again with no network (tfforge build --kit). See docs/how-to/capture-a-kit.md."""
