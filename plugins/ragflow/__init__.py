"""botkit built-in plugin: ragflow (being written; registers nothing yet)."""
