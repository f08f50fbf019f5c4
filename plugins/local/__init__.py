"""botkit built-in plugin: local (being written; registers nothing yet)."""
