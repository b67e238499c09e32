"""Options declared once (tfforge/data/options.toml): the declarations, the one value parser,
and the typed options each command receives (typed/, generated). tfforge.settings merges the
layers."""
