"""Services: the only code that writes, and the only code that broadcasts."""
