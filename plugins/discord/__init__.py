"""botkit built-in plugin: discord (being written; registers nothing yet)."""
