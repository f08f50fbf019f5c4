"""botkit built-in plugin: teams (being written; registers nothing yet)."""
