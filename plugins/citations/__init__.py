"""botkit built-in plugin: citations (being written; registers nothing yet)."""
