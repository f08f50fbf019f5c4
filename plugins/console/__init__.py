"""botkit built-in plugin: console (being written; registers nothing yet)."""
