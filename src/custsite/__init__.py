"""custsite: a git repository of plain-text customer records, validated and rendered as a site."""

__version__ = "0.1.0"
