"""botkit's built-in plugins, each loaded through the "botkit" entry-point group like any other."""
