"""botkit built-in plugin: access (being written; registers nothing yet)."""
