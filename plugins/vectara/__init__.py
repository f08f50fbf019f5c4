"""botkit built-in plugin: vectara (being written; registers nothing yet)."""
