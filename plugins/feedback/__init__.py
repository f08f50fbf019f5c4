"""botkit built-in plugin: feedback (being written; registers nothing yet)."""
