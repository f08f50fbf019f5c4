"""botkit built-in plugin: llamacloud (being written; registers nothing yet)."""
