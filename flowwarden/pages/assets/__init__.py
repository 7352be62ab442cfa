"""The CSS and JavaScript the pages ship with (a package, so wheels include these files)."""
